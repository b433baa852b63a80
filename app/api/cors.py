"""CORS only for the origins configured in ``settings.cors_origins`` (none by default)."""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from app.settings import Settings


def cors_config(settings: Settings) -> CORSConfig | None:
    """Reads (GET, POST batch) from the configured origins; None when none is configured."""
    origins = settings.cors_origin_list()
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "If-None-Match"],
        expose_headers=["ETag", "Retry-After"],
        allow_credentials=False,
        max_age=600,
    )
