"""Stores and products from CSV files configured in settings (loaded at start-up)."""

from __future__ import annotations

import asyncpg

from app.settings import Settings


async def load_reference_files(pool: asyncpg.Pool, settings: Settings) -> None:
    """Placeholder until the stores/products loader lands."""
