"""Issue 30, item 4: the data file alone is the sandbox (its write-ahead log checkpointed), and a flag that
contradicts a kept file is refused instead of regenerating it over the changes made to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ordersync.cli import app as cli
from tests.sandbox.inprocess import InProcess


@pytest.mark.parametrize("api", ["frontcore", "prio"])
def test_a_copy_of_the_file_alone_holds_generated_data_and_control_changes(api: str, tmp_path: Path) -> None:
    data = tmp_path / "kept.sqlite"
    first = InProcess(api, orders=30, data_path=str(data), rate_limit=False)
    created = first.post("/_sandbox/orders", json={}).json()
    first.sandbox.close()
    assert not (tmp_path / "kept.sqlite-wal").exists() or (tmp_path / "kept.sqlite-wal").stat().st_size == 0
    copy = tmp_path / "elsewhere" / "copy.sqlite"
    copy.parent.mkdir()
    shutil.copyfile(data, copy)  # the file alone, without its -wal and -shm
    again = InProcess(api, orders=None, anchor=None, data_path=str(copy), rate_limit=False)
    assert again.get("/_sandbox/stats").json()["orders"] == 31
    assert created in again.sandbox.store.find("orders")


def test_generation_is_checkpointed_before_any_request(tmp_path: Path) -> None:
    data = tmp_path / "fresh.sqlite"
    InProcess("eguma", orders=50, data_path=str(data), rate_limit=False)
    wal = tmp_path / "fresh.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_flag_contradicting_a_kept_file_is_refused_and_absent_flags_serve_it(tmp_path: Path) -> None:
    data = str(tmp_path / "fc.sqlite")
    first = InProcess("frontcore", orders=25, seed=3, data_path=data, rate_limit=False)
    first.post("/_sandbox/orders", json={"your_reference": "kept"})
    first.sandbox.close()
    for flags in ({"orders": 40}, {"seed": 4}):
        with pytest.raises(ValueError, match="holds 25 orders of seed 3") as refused:
            InProcess("frontcore", data_path=data, **flags)
        assert f"--{next(iter(flags))}" in str(refused.value)
    kept = InProcess("frontcore", orders=None, seed=None, anchor=None, data_path=data, rate_limit=False).sandbox
    assert (kept.orders, kept.seed, kept.store.count("orders")) == (25, 3, 26)
    with pytest.raises(ValueError, match="holds a frontcore sandbox"):
        InProcess("eguma", orders=None, data_path=data)


def test_serve_refuses_a_contradicting_orders_flag_with_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "fc.sqlite")
    InProcess("frontcore", orders=25, data_path=data).sandbox.close()
    result = CliRunner().invoke(cli, ["serve", "frontcore", "--data", data, "--orders", "30"])
    assert result.exit_code != 0 and "holds 25 orders" in result.output and "--orders 30" in result.output
