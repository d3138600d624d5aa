"""ordersync.toml: environment variables, unknown settings and sections, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordersync import config
from ordersync.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ordersync.toml"
    path.write_text(text)
    return str(path)


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FC_KEY", "from-env")
    cfg = config.load(write(tmp_path, '[sources.c]\ntype = "frontcore"\napi_key = "${FC_KEY}"\n'))
    assert cfg.destination == "sqlite:///orders.db"
    assert cfg.sources["c"].api_key.get_secret_value() == "from-env"  # type: ignore[attr-defined]
    assert "from-env" not in repr(cfg.sources["c"])


def test_a_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(ConfigError, match="NOPE_KEY.*not set"):
        config.load(write(tmp_path, '[sources.c]\ntype = "frontcore"\napi_key = "${NOPE_KEY}"\n'))


@pytest.mark.parametrize(("text", "expected"), [
    ('[sources.c]\napi_key = "k"\n', "has no type"),
    ('[sources.c]\ntype = "shopify"\n', "type 'shopify' is unknown"),
    ('[sourcez.c]\ntype = "frontcore"\n', "unknown section"),
    ('[destination]\nurl = "sqlite:///x.db"\ndb = 1\n[sources.c]\ntype = "frontcore"\napi_key = "k"\n',
     "[destination] takes the settings"),
    ("[sources.c\n", "not valid TOML"),
    ('[sources.c]\ntype = "frontcore"\n', "'api_key' is required"),
])
def test_invalid_files_get_one_clear_message(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text))
    assert expected in str(err.value)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ordersync init"):
        config.load(str(tmp_path / "absent.toml"))


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[sources.c]\ntype = "frontcore"\napi_key = "k"\n')
    monkeypatch.setenv("ORDERSYNC_CONFIG", path)
    assert config.load(None).path == Path(path)


def test_the_init_template_is_valid_once_its_variables_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import tomllib

    from ordersync.settings_docs import init_template

    text = init_template()
    for var in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(var, "value-of-" + var)
    cfg = config.parse(tomllib.loads(text))
    assert cfg.sources and cfg.destination.startswith("sqlite:///")


@pytest.mark.parametrize("secret", ["key-12345\n", "key-12345\r\n", " key-12345", "key-12345 ", "key\x07-12345",
                                    "key-12345\t"])
def test_a_secret_with_whitespace_or_control_characters_is_refused_without_showing_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("FC_KEY", secret)
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, '[sources.c]\ntype = "frontcore"\napi_key = "${FC_KEY}"\n'))
    message = str(err.value)
    assert "api_key" in message and "[sources.c]" in message and "\n" not in message
    assert "12345" not in message and "not shown here" in message and "Value error" not in message


def test_a_secret_with_inner_punctuation_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FC_KEY", "a-b_c.d/e+f=")
    cfg = config.load(write(tmp_path, '[sources.c]\ntype = "frontcore"\napi_key = "${FC_KEY}"\n'))
    assert cfg.sources["c"].secrets() == ["a-b_c.d/e+f="]


def test_a_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "ordersync.toml"
    path.write_bytes('[sources.c]\ntype = "frontcore"\napi_key = "k"\n# Zürich\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        config.load(str(path))
    assert str(err.value) == f"{path} is not UTF-8 text (byte 48 is not UTF-8): save it as UTF-8"
