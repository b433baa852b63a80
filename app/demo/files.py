"""The demo folder: reference files, a feeds file aimed at the simulator, a policy.

Everything the service reads is written here so a newcomer can open it, and each
file is read back with the service's own loader, so a demo never starts from a
file the service would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.demo.catalog import STORES, products_csv, stores_csv
from app.domain.model import Product
from app.policy_file import load_policy
from reconcilers.feeds_config import load_feeds

POS_FEED = "demo-pos"
WAREHOUSE_FEED = "demo-warehouse"

# Short max_data_age: stop the simulator and the badges turn "unknown" within minutes.
_POLICY = """\
# Promise policy for the demo (format: app/policy_file.py, docs/configuration.md).
safety_buffer = 2          # units held back before anything is promised
low_stock_below = 3        # fewer promisable units than this: "low stock"
max_data_age = "10m"       # no promise when a store's newest data is older

# Power tools walk out of the door: hold more back.
[[buffers]]
category = "power-tools"
units = 3
"""


@dataclass(frozen=True)
class DemoFiles:
    """Where ``write_demo_folder`` put each file."""

    folder: Path
    stores: Path
    products: Path
    feeds: Path
    policy: Path


def feeds_toml(base_url: str, *, pos_interval: str = "5s", warehouse_interval: str = "60s") -> str:
    """A feeds file pulling the simulator at ``base_url`` (no trailing slash)."""
    return f"""\
# Feeds for the demo (format: reconcilers/feeds_config.py, docs/configuration.md).
[[feeds]]
name = "{POS_FEED}"
kind = "pos"
url = "{base_url}/pos/events"
interval = "{pos_interval}"
timeout = "10s"

[[feeds]]
name = "{WAREHOUSE_FEED}"
kind = "warehouse"
url = "{base_url}/warehouse/snapshot.csv"
interval = "{warehouse_interval}"
timeout = "20s"
"""


def write_demo_folder(
    folder: Path,
    *,
    feed_base_url: str,
    products: tuple[Product, ...],
    pos_interval: str = "5s",
    warehouse_interval: str = "60s",
) -> DemoFiles:
    """Write (overwrite) the demo files under ``folder`` and check they load."""
    folder.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(
        folder=folder,
        stores=folder / "stores.csv",
        products=folder / "products.csv",
        feeds=folder / "feeds.toml",
        policy=folder / "policy.toml",
    )
    files.stores.write_text(stores_csv(STORES), encoding="utf-8")
    files.products.write_text(products_csv(products), encoding="utf-8")
    files.feeds.write_text(
        feeds_toml(
            feed_base_url.rstrip("/"),
            pos_interval=pos_interval,
            warehouse_interval=warehouse_interval,
        ),
        encoding="utf-8",
    )
    files.policy.write_text(_POLICY, encoding="utf-8")
    load_feeds(files.feeds)
    load_policy(files.policy)
    return files
