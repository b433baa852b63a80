"""``availability keys create|list|revoke``: API keys with roles (docs/managers.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from app.commands import database
from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="create, list or revoke API keys (roles admin, store_manager, ingest, app)",
        description="API keys with roles. A new key is printed once; only its hash is stored. "
        "Access control is always on: bootstrap a fresh install with "
        "'availability keys create --role admin --name NAME' (this talks to the database "
        "directly) or the admin_token setting.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument(
        "--role", required=True, choices=["admin", "store_manager", "ingest", "app"]
    )
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--store", action="append", default=[], metavar="STORE_ID",
        help="a store a store_manager key may read and write (repeat for several)",
    )  # fmt: skip
    actions.add_parser("list", help="list keys (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the id shown by 'keys list' (sak_<id>_…)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.db.keys import KeyRefused, check_new_key

    if args.action == "create" and (problems := check_new_key(args.name, args.role, args.store)):
        print(f"availability keys create: {'; '.join(problems)}", file=sys.stderr)
        return 2
    with database(settings) as dsn:
        try:
            return asyncio.run(_run(dsn, args))
        except KeyRefused as exc:
            print(f"availability keys {args.action}: {exc}", file=sys.stderr)
            return 2


async def _run(dsn: str, args: argparse.Namespace) -> int:
    import asyncpg
    import structlog

    from app.clock import utc_now
    from app.db import keys as keys_db
    from app.db.migrate import migrate

    log = structlog.get_logger("app.commands.keys")
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        now = utc_now()
        if args.action == "create":
            new = await keys_db.create_key(
                conn, name=args.name, role=args.role, store_ids=args.store, now=now
            )
            log.info("key.created", key_id=new.key.key_id, role=new.key.role,
                     stores=list(new.key.store_ids))  # fmt: skip
            print(new.secret)
            print(
                f"key {new.key.key_id} ({new.key.role}) created: the line above is the key; "
                "it is not stored and cannot be shown again.",
                file=sys.stderr,
            )
        elif args.action == "list":
            print("key_id\trole\tstores\tname\tcreated_at\tlast_used_at\trevoked_at")
            for k in await keys_db.list_keys(conn):
                print("\t".join([
                    k.key_id, k.role, ",".join(k.store_ids) or "-", k.name,
                    _t(k.created_at), _t(k.last_used_at), _t(k.revoked_at),
                ]))  # fmt: skip
        else:
            key_id = args.key_id.removeprefix("sak_").split("_")[0]
            revoked = await keys_db.revoke_key(conn, key_id, now=now)
            log.info("key.revoked", key_id=revoked.key_id, role=revoked.role)
            print(f"key {revoked.key_id} ({revoked.role}, {revoked.name}) revoked at "
                  f"{_t(revoked.revoked_at)}", file=sys.stderr)  # fmt: skip
    finally:
        await conn.close()
    return 0


def _t(value: Any) -> str:
    from app.domain.reconciliation import iso

    return iso(value) or "-"
