"""Settings are written once, on the models: every field described, the committed ``docs/settings/`` pages what the
models render, and the ``init`` template holding every setting, each commented line valid once uncommented.

The models come from the API registry, so a new API's settings are checked without editing this file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from ordersync import apis, config, settings_docs
from ordersync.apis.base import SourceSettings
from ordersync.config import DestinationSettings
from ordersync.settings_fields import settings_of

DOCS = Path(__file__).parents[1] / "docs" / "settings"
MODELS: dict[str, type[BaseModel]] = {
    "[destination]": DestinationSettings,
    "every source": SourceSettings,
    **{f"type {name}": spec.settings for name, spec in apis.registry().items()},
}
SUMMARY_MAX = 80
"""The first sentence of a description is the template's comment: a line a reader takes in at once."""


@pytest.mark.parametrize("where", MODELS)
def test_every_settings_field_has_a_description_whose_first_sentence_is_short(where: str) -> None:
    model = MODELS[where]
    missing = [name for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"{model.__name__} ({where}): give these fields a Field(description=...): {missing}"
    long = {s.name: s.summary for s in settings_of(model) if len(s.summary) > SUMMARY_MAX}
    assert not long, f"{model.__name__}: end the first sentence within {SUMMARY_MAX} characters: {long}"


def test_the_committed_settings_pages_are_what_the_models_render() -> None:
    expected = settings_docs.pages()
    committed = {path.name: path.read_text(encoding="utf-8") for path in DOCS.glob("*.md")}
    stale = sorted(name for name in expected.keys() | committed.keys() if expected.get(name) != committed.get(name))
    assert not stale, (f"docs/settings/ differs from the settings models ({', '.join(stale)}): run "
                       f"`{settings_docs.COMMAND}` from the repository's root and commit docs/settings/")


def test_the_regeneration_command_writes_every_page_and_drops_a_generated_page_no_model_gives(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "gone.md").write_text(settings_docs.MARK + "\n# an API removed since\n", encoding="utf-8")
    (folder / "notes.md").write_text("# written by hand\n", encoding="utf-8")
    assert settings_docs.main([str(folder)]) == 0
    written = {path.name: path.read_text(encoding="utf-8") for path in folder.glob("*.md")}
    assert written == {**settings_docs.pages(), "notes.md": "# written by hand\n"}

    assert settings_docs.main([str(tmp_path / "absent" / "settings")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def sections(text: str) -> dict[str, list[str]]:
    """The template's lines by section header."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.split()[0]
            found[current] = []
        elif current:
            found[current].append(line)
    return found


def uncommented(lines: list[str], prefer: str = "") -> dict[str, str]:
    """Every setting of a section, each commented line uncommented (the first value shown, or the one that
    starts with ``prefer``), by name."""
    settings: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^(?:# )?([a-z_]+) = (.*?)(?:\s+# .*)?$", line)
        if match and (match.group(1) not in settings or match.group(2).startswith(prefer)):
            settings[match.group(1)] = match.group(2)
    return settings


def test_the_init_template_sets_every_setting_each_valid_once_uncommented(monkeypatch: pytest.MonkeyPatch) -> None:
    text = settings_docs.init_template()
    for var in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(var, "value-of-" + var)
    parts = sections(text)
    destination = uncommented(parts.pop("[destination]"), prefer='"postgresql:')  # its other settings need it
    assert set(destination) == {f.alias or name for name, f in DestinationSettings.model_fields.items()}
    document = "[destination]\n" + "".join(f"{k} = {v}\n" for k, v in destination.items())
    for header, lines in parts.items():
        settings = uncommented(lines)
        model = apis.get(tomllib.loads(f"type = {settings['type']}")["type"]).settings
        assert set(settings) == set(model.model_fields), f"{header}: the template's settings are not the model's"
        document += f"{header}\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
    cfg = config.parse(tomllib.loads(document))
    assert {type(s) for s in cfg.sources.values()} == {spec.settings for spec in apis.registry().values()}


def test_the_init_template_as_written_is_a_valid_configuration_with_secrets_as_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = settings_docs.init_template()
    set_lines = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    variables = set(re.findall(r"\$\{(\w+)\}", set_lines))
    secrets = {name for spec in apis.registry().values() for name in spec.settings.secret_settings()}
    assert len(variables) == sum(len(s.settings.secret_settings()) for s in apis.registry().values())
    for var in variables:
        monkeypatch.setenv(var, "value-of-" + var)
    cfg = config.parse(tomllib.loads(text))
    assert cfg.destination == config.DEFAULT_DESTINATION
    for source in cfg.sources.values():
        for name in secrets & set(type(source).model_fields):
            assert getattr(source, name).get_secret_value().startswith("value-of-")
