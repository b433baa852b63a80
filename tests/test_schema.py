"""``app/db/schema.sql`` is the migrated schema: the file to read equals what start-up builds.

A fresh database built from ``schema.sql`` alone and the migrated template are compared
through the catalogs (tables, columns, constraints, indexes, functions, triggers, views,
domains, sequences, storage options), so the check does not depend on the version of
``pg_dump`` that wrote the file. When it fails, run ``scripts/dump_schema.py``.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.conftest import _admin, with_database

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "app" / "db" / "schema.sql"

# Each query describes one kind of object of the public schema as sorted text rows.
CATALOG = {
    "relations": """
        SELECT c.relname || ' ' || c.relkind::text || ' ' || c.relpersistence::text
               || ' ' || coalesce(array_to_string(c.reloptions, ','), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "columns": """
        SELECT c.relname || '.' || a.attname || ' #' || row_number() OVER (
                   PARTITION BY c.oid ORDER BY a.attnum)
               || ' ' || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
               || ' ' || a.attgenerated::text || a.attidentity::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT coalesce(c.relname, t.typname) || ' ' || k.conname || ' '
               || pg_get_constraintdef(k.oid)
        FROM pg_constraint k
        JOIN pg_namespace n ON n.oid = k.connamespace
        LEFT JOIN pg_class c ON c.oid = k.conrelid
        LEFT JOIN pg_type t ON t.oid = k.contypid
        WHERE n.nspname = 'public'""",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "functions": """
        SELECT pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'""",
    "triggers": """
        SELECT pg_get_triggerdef(g.oid) FROM pg_trigger g
        JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT g.tgisinternal""",
    "views": """
        SELECT viewname || ' ' || definition FROM pg_views WHERE schemaname = 'public'""",
    "types": """
        SELECT t.typname || ' ' || t.typtype::text || ' '
               || coalesce(format_type(t.typbasetype, t.typtypmod), '')
               || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || t.typdefault, '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('d', 'e')""",
    "sequences": """
        SELECT sequencename || ' ' || data_type::text || ' ' || start_value || ' '
               || increment_by || ' ' || cycle
        FROM pg_sequences WHERE schemaname = 'public'""",
    "comments": """
        SELECT c.relname || coalesce('.' || a.attname, '') || ' ' || d.description
        FROM pg_description d
        JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
        WHERE n.nspname = 'public'""",
}


async def describe(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            kind: sorted(row[0] for row in await conn.fetch(query))
            for kind, query in CATALOG.items()
        }
    finally:
        await conn.close()


async def test_schema_sql_builds_the_migrated_schema(pg_dsn: str, template_db: str) -> None:
    name = "t_schema_sql"
    await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    dsn = with_database(pg_dsn, name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(SCHEMA_FILE.read_text(encoding="utf-8"))
        finally:
            await conn.close()
        built, migrated = await describe(dsn), await describe(with_database(pg_dsn, template_db))
    finally:
        await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    # Every kind holds something, so an empty description cannot pass by accident.
    assert all(migrated[kind] for kind in ("relations", "columns", "constraints", "indexes"))
    for kind in CATALOG:
        stale = "app/db/schema.sql is stale: run .venv/bin/python scripts/dump_schema.py"
        assert built[kind] == migrated[kind], f"{kind}: {stale}"
