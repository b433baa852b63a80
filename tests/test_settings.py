"""Settings: environment over file over defaults, and clear messages for bad values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.policy_file import load_policy
from app.settings import SettingsError, load_settings, parse_duration
from reconcilers.feeds_config import load_feeds


def test_defaults_and_env_names() -> None:
    s = load_settings({})
    assert (s.port, s.host, s.data_dir, s.database_url) == (8000, "127.0.0.1", Path(".data"), None)
    s = load_settings(
        {"PORT": "9001", "DATABASE_URL": "postgresql://x/y", "AVAILABILITY_DATA_DIR": "/tmp/d"}
    )
    assert (s.port, s.database_url, s.data_dir) == (9001, "postgresql://x/y", Path("/tmp/d"))


def test_file_then_env_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = 7000\nretry_timeout = "5m"\nlog_format = "json"\n')
    s = load_settings({"AVAILABILITY_CONFIG": str(cfg), "PORT": "7100"})
    assert (s.port, s.retry_timeout, s.log_format) == (7100, timedelta(minutes=5), "json")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT='eighty'"),
        ({"PORT": "70000"}, "PORT='70000'"),
        ({"AVAILABILITY_MAX_SNAPSHOT_DROP": "1.5"}, "AVAILABILITY_MAX_SNAPSHOT_DROP"),
        ({"AVAILABILITY_RETRY_TIMEOUT": "soon"}, "not a duration: 'soon'"),
        ({"AVAILABILITY_LOG_FORMAT": "xml"}, "AVAILABILITY_LOG_FORMAT='xml'"),
        ({"AVAILABILITY_CONFIG": "/nonexistent/x.toml"}, "cannot read"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_settings(env)


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("prot = 7000\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings({"AVAILABILITY_CONFIG": str(cfg)})


def test_durations() -> None:
    assert [parse_duration(v) for v in (90, "90s", "5m", "6h", "1d", "250ms", "PT6H")] == [
        timedelta(seconds=90),
        timedelta(seconds=90),
        timedelta(minutes=5),
        timedelta(hours=6),
        timedelta(days=1),
        timedelta(milliseconds=250),
        timedelta(hours=6),
    ]


def test_policy_file(tmp_path: Path) -> None:
    p = tmp_path / "policy.toml"
    p.write_text(
        'safety_buffer = 3\nmax_data_age = "2h"\n[[buffers]]\ncategory = "toys"\nunits = 5\n'
    )
    policy = load_policy(p)
    assert (policy.safety_buffer, policy.max_data_age) == (3, timedelta(hours=2))
    assert policy.buffer_for("S1", "A", "toys") == 5
    p.write_text("[[buffers]]\nunits = 5\n")
    with pytest.raises(SettingsError, match=r"buffers\[0\].*needs store_id, category or sku"):
        load_policy(p)


def test_feeds_file(tmp_path: Path) -> None:
    p = tmp_path / "feeds.toml"
    p.write_text(
        '[[feeds]]\nname = "pos"\nkind = "pos"\nurl = "http://127.0.0.1:1/pos"\ninterval = "30s"\n'
        'auth_header = "Authorization"\nauth_env = "POS_TOKEN"\n'
        '[[feeds]]\nname = "wh"\nkind = "warehouse"\nurl = "http://127.0.0.1:1/wh.csv"\n'
    )
    pos, wh = load_feeds(p)
    assert (pos.interval, wh.interval) == (timedelta(seconds=30), timedelta(seconds=60))
    assert pos.headers({"POS_TOKEN": "Bearer t"}) == {"Authorization": "Bearer t"}
    with pytest.raises(SettingsError, match="POS_TOKEN is not set"):
        pos.headers({})
    p.write_text('[[feeds]]\nname = "pos"\nkind = "till"\nurl = "http://x"\n')
    with pytest.raises(SettingsError, match=r"feeds\[0\].*kind"):
        load_feeds(p)
