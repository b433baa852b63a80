"""Every route handler the app serves, in one list."""

from __future__ import annotations

from typing import Any

from app.api.health import health, ready


def route_handlers() -> list[Any]:
    return [health, ready]
