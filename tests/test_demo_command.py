"""``availability demo`` and ``feed-simulator`` as a newcomer runs them: help, files, a real start and stop."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
from pathlib import Path

import httpx
import msgspec

from app.demo.catalog import demo_products
from app.demo.files import POS_FEED, WAREHOUSE_FEED, write_demo_folder
from app.domain.model import Product, Store
from app.policy_file import load_policy
from reconcilers.feeds_config import load_feeds
from tests.cli_process import AVAILABILITY, free_port, wait_healthy


def test_help_names_every_option() -> None:
    demo = subprocess.run(
        [*AVAILABILITY, "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert demo.returncode == 0, demo.stderr
    for option in ("--port", "--host", "--feeds-port", "--seed", "--history", "--tick"):
        assert option in demo.stdout
    sim = subprocess.run(
        [*AVAILABILITY, "feed-simulator", "--help"], capture_output=True, text=True, timeout=60
    )
    assert sim.returncode == 0, sim.stderr
    for option in ("--port", "--host", "--seed", "--write-to", "--public-url"):
        assert option in sim.stdout


def test_demo_folder_loads_with_the_services_own_loaders(tmp_path: Path) -> None:
    files = write_demo_folder(
        tmp_path / "demo", feed_base_url="http://127.0.0.1:9999/", products=demo_products(7)
    )
    feeds = {f.name: f for f in load_feeds(files.feeds)}
    assert (
        feeds[POS_FEED].kind == "pos" and feeds[POS_FEED].url == "http://127.0.0.1:9999/pos/events"
    )
    assert feeds[POS_FEED].interval.total_seconds() == 5
    assert feeds[WAREHOUSE_FEED].kind == "warehouse"
    assert feeds[WAREHOUSE_FEED].url == "http://127.0.0.1:9999/warehouse/snapshot.csv"
    assert feeds[WAREHOUSE_FEED].interval.total_seconds() == 60
    stores = [
        msgspec.convert(r, Store, strict=False)
        for r in csv.DictReader(io.StringIO(files.stores.read_text()))
    ]
    products = [
        msgspec.convert(r, Product, strict=False)
        for r in csv.DictReader(io.StringIO(files.products.read_text()))
    ]
    assert len(stores) == 5 and len(products) == 300
    assert load_policy(files.policy).buffer_for("LYON-01", "SKU-0001", "power-tools") == 3


def test_demo_starts_both_servers_and_stops_cleanly_on_ctrl_c(tmp_path: Path, db_dsn: str) -> None:
    port, feeds_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "AVAILABILITY_DATA_DIR": str(tmp_path / "data"),
        "AVAILABILITY_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [
            *AVAILABILITY,
            "demo",
            "--port",
            str(port),
            "--feeds-port",
            str(feeds_port),
            "--history",
            "5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(proc, port, 60)
        feed = httpx.get(f"http://127.0.0.1:{feeds_port}/pos/events", timeout=5)
        assert feed.status_code == 200 and feed.json()["events"]
        assert (tmp_path / "data" / "demo" / "feeds.toml").read_text().count(
            f"127.0.0.1:{feeds_port}"
        ) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/v1/availability/SKU-" in out
    assert f"http://127.0.0.1:{feeds_port}/shelf/" in out
    for url in (f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{feeds_port}/health"):
        try:
            httpx.get(url, timeout=1)
            raise AssertionError(f"{url} still answers after Ctrl-C")
        except httpx.TransportError:
            pass
