"""``availability demo``: the service against a simulated store chain, in one command.

Starts the feed simulator (a thread, 127.0.0.1), writes the demo folder, then runs
the service exactly as ``availability serve`` would, with the feeds, stores,
products and policy files pointing into that folder. Ctrl-C stops the service,
the embedded PostgreSQL and the simulator, in that order.

Access control is on in the demo as everywhere: the badge reads need nothing, the
rest needs a key. Unless ``admin_token`` is configured, the demo makes a random admin
token for this run only and prints it once in its banner (docs/demo.md).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.commands import database
from app.commands.feed_simulator import add_simulation_arguments, simulation_refused
from app.commands.serve import PreflightError, preflight
from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the service against a simulated chain of stores (try it first)",
        description="Start a feed simulator (five stores in Lyon, a few hundred products, sales every "
        "few seconds), write stores.csv, products.csv, feeds.toml and policy.toml into "
        "AVAILABILITY_DATA_DIR/demo, and run the service on them. Uses DATABASE_URL, or an embedded "
        "PostgreSQL in the demo folder when it is unset. Ctrl-C stops everything.",
    )
    p.add_argument("--host", help="service bind address (default 127.0.0.1; env AVAILABILITY_HOST)")
    p.add_argument("--port", type=int, help="service port (default 8000; env PORT)")
    p.add_argument(
        "--feeds-port", type=int, default=8001, help="simulator port on 127.0.0.1 (default 8001)"
    )
    add_simulation_arguments(p, starts="when the demo starts")
    p.set_defaults(func=run, settings_overrides=("host", "port"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.demo.catalog import demo_products
    from app.demo.feed import FeedSimulator
    from app.demo.files import write_demo_folder
    from app.demo.server import SimulatorServer

    if simulation_refused(args, "demo"):
        return 2
    try:  # serve's start-up check, on the one file the demo does not write: the policy
        preflight(
            msgspec.structs.replace(settings, feeds_file=None, stores_file=None, products_file=None)
        )
    except PreflightError as exc:
        print(f"availability demo: {exc}", file=sys.stderr)
        return 2
    folder = settings.data_dir / "demo"
    start = datetime.now(UTC) - timedelta(minutes=args.history)
    feed = FeedSimulator.create(seed=args.seed, start=start)
    try:
        simulator = SimulatorServer(
            feed, host="127.0.0.1", port=args.feeds_port, tick_seconds=args.tick
        )
    except OSError as exc:
        print(
            f"availability demo: cannot listen on 127.0.0.1:{args.feeds_port} ({exc.strerror}); "
            "try --feeds-port",
            file=sys.stderr,
        )
        return 1
    with simulator:
        files = write_demo_folder(
            folder, feed_base_url=simulator.url(), products=demo_products(args.seed)
        )
        demo_settings, new_token = with_admin_token(settings)
        demo_settings = msgspec.structs.replace(
            demo_settings,
            data_dir=folder,
            feeds_file=files.feeds,
            stores_file=files.stores,
            products_file=files.products,
            policy_file=settings.policy_file or files.policy,
        )
        banner = _banner(
            demo_settings,
            simulator.url(),
            feed.simulation.best_sellers(1)[0],
            files.folder,
            new_token=new_token,
        )
        _serve(demo_settings, banner)
    return 0


def with_admin_token(settings: Settings) -> tuple[Settings, str | None]:
    """The demo's settings with an admin credential, and the token when it is new.

    A configured ``admin_token`` is kept (and never printed); otherwise a random one
    is made for this run: it lives only in this process, so it dies with the demo.
    """
    if settings.admin_token:
        return settings, None
    token = secrets.token_urlsafe(24)
    return msgspec.structs.replace(settings, admin_token=token), token


def _serve(settings: Settings, banner: str) -> None:
    """``availability serve``'s body, printing the banner once the service is up."""
    import uvicorn

    from app.api.app import create_app

    class BannerServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(banner, flush=True)

    with database(settings) as dsn:
        app = create_app(settings, dsn=dsn)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the demo ends
            BannerServer(config).run()


def _banner(
    settings: Settings, feeds_url: str, sku: str, folder: Any, *, new_token: str | None = None
) -> str:
    from app.demo.catalog import SHOPPER_LAT, SHOPPER_LON, STORES

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    api = f"http://{host}:{settings.port}"
    store = STORES[0].store_id
    if new_token is not None:
        token = new_token
        told = f"Admin token for this run only (new each run, not stored): {new_token}"
    else:
        token, told = "$AVAILABILITY_ADMIN_TOKEN", "Admin token: your AVAILABILITY_ADMIN_TOKEN"
    return f"""
  store-availability demo: {len(STORES)} simulated stores in Lyon, feeds at {feeds_url}
  demo files in {folder}/  (stores.csv, products.csv, feeds.toml, policy.toml)

  A product page with the badge widget:
    {api}/?sku={sku}

  Nearby stores for a best seller, nearest first, from Place des Terreaux:
    {api}/v1/availability/{sku}?lat={SHOPPER_LAT}&lon={SHOPPER_LON}&radius_km=10
  One store:
    {api}/v1/stores/{store}/availability/{sku}
  What is really on that shelf (the simulator's secret):
    {feeds_url}/shelf/{store}/{sku}
  API docs: {api}/schema    health: {api}/health

  Everything else (admin API, reconciliation report, counts, feedback, export) needs a key.
  {told}
  The reconciliation summary of {store} with it:
    curl -H "Authorization: Bearer {token}" {api}/v1/stores/{store}/reconciliation/summary

  Badges follow the feeds: POS every 5 s, warehouse snapshot every 60 s. Ctrl-C stops everything.
"""
