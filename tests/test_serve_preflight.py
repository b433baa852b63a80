"""``availability serve`` (and ``demo``) check their start-up files before anything
starts: a bad file is one line naming it and the problem, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from app.commands import serve
from app.commands.serve import PreflightError, preflight
from app.domain.policy import Policy
from app.settings import Settings
from tests.cli_process import AVAILABILITY, free_port

GOOD_POLICY = 'safety_buffer = 3\nmax_data_age = "2h"\n'
GOOD_FEEDS = '[[feeds]]\nname = "pos-main"\nkind = "pos"\nurl = "http://127.0.0.1:1/events"\n'
GOOD_STORES = (
    "store_id,name,lat,lon,postal_code,timezone\nS001,Main,48.85,2.35,75001,Europe/Paris\n"
)
GOOD_PRODUCTS = "sku,name,category\nSKU-1,Thing,tools\nSKU-2,Other,\n"


def files(tmp_path: Path, settings: Settings, **override: str) -> Settings:
    """Settings naming four good files in ``tmp_path``, with some contents overridden."""
    contents = {
        "policy.toml": GOOD_POLICY,
        "feeds.toml": GOOD_FEEDS,
        "stores.csv": GOOD_STORES,
        "products.csv": GOOD_PRODUCTS,
    }
    contents.update({k.replace("_", "."): v for k, v in override.items()})
    for name, text in contents.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return msgspec.structs.replace(
        settings,
        policy_file=tmp_path / "policy.toml",
        feeds_file=tmp_path / "feeds.toml",
        stores_file=tmp_path / "stores.csv",
        products_file=tmp_path / "products.csv",
    )


def test_good_files_pass_and_give_the_policy(tmp_path: Path, settings: Settings) -> None:
    policy = preflight(files(tmp_path, settings))
    assert policy == Policy(safety_buffer=3, max_data_age=timedelta(hours=2))


def test_no_files_configured_is_fine(settings: Settings) -> None:
    assert preflight(settings) == Policy()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"policy_toml": "safety_buffer = \n"},
            "policy file {d}/policy.toml: not valid TOML: Invalid value (at line 1, column 17)",
        ),
        (
            {"policy_toml": "safety_buffer = -1\n"},
            "policy file {d}/policy.toml: Expected `int` >= 0 - at `$.safety_buffer`",
        ),
        (
            {"policy_toml": "buffers = 3\n"},
            "policy file {d}/policy.toml: cannot be loaded: TypeError: 'int' object is not iterable",
        ),
        (
            {"feeds_toml": GOOD_FEEDS.replace('"pos"', '"ftp"')},
            "feeds file {d}/feeds.toml: feeds[0]: Invalid enum value 'ftp' - at `$.kind`",
        ),
        (
            {"stores_csv": GOOD_STORES + "S002,Second,north,2.3,,\nS 3,Third,1,2,,Mars/Base\n"},
            "stores file {d}/stores.csv: line 3: lat 'north' is not a number; line 4: store_id "
            "'S 3' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :); line 4: timezone "
            "'Mars/Base' is not an IANA time zone (e.g. Europe/Paris)",
        ),
        (
            {"products_csv": "sku;name;category\n"},
            "products file {d}/products.csv: line 1: header must be exactly 'sku,name,category', "
            "got 'sku;name;category'",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    tmp_path: Path, settings: Settings, override: dict[str, str], message: str
) -> None:
    with pytest.raises(PreflightError) as caught:
        preflight(files(tmp_path, settings, **override))
    assert str(caught.value) == message.format(d=tmp_path)


def test_a_missing_file_is_named(tmp_path: Path, settings: Settings) -> None:
    s = msgspec.structs.replace(files(tmp_path, settings), stores_file=tmp_path / "nope.csv")
    with pytest.raises(PreflightError) as caught:
        preflight(s)
    assert str(caught.value) == f"stores file {tmp_path}/nope.csv: cannot read: No such file or directory"  # fmt: skip


def test_serve_stops_with_exit_code_2_before_starting_anything(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """No database, no uvicorn: the command returns at once."""
    bad = files(tmp_path, settings, policy_toml="low_stock_below = 0\n")
    rc = serve.run(argparse.Namespace(), bad)
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (
        f"availability serve: policy file {tmp_path}/policy.toml: "
        "Expected `int` >= 1 - at `$.low_stock_below`\n"
    )
    assert not (tmp_path / "data").exists()  # the embedded database was never started


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVAILABILITY_")}
    env.pop("DATABASE_URL", None)
    env.update(AVAILABILITY_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def test_the_command_line_says_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "feeds.toml").write_text("[[feeds]]\nname = 'x'\n", encoding="utf-8")
    done = subprocess.run(
        [*AVAILABILITY, "serve", "--port", str(free_port())],
        env=_env(tmp_path, AVAILABILITY_FEEDS_FILE=str(tmp_path / "feeds.toml")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"availability serve: feeds file {tmp_path}/feeds.toml: feeds[0]: "
        "Object missing required field `kind`\n"
    )
    assert "Traceback" not in done.stdout


def test_the_demo_runs_the_same_checks(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text("max_data_age = 'soon'\n", encoding="utf-8")
    done = subprocess.run(
        [*AVAILABILITY, "demo", "--port", str(free_port()), "--feeds-port", str(free_port())],
        env=_env(tmp_path, AVAILABILITY_POLICY_FILE=str(tmp_path / "policy.toml")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"availability demo: policy file {tmp_path}/policy.toml: ")
    assert "not a duration: 'soon'" in done.stderr
    assert done.stderr.count("\n") == 1
