"""Every route handler the app serves, in one list."""

from __future__ import annotations

from typing import Any

from app.api.admin import admin_handlers
from app.api.availability import nearby_availability, store_availability
from app.api.counts import upload_counts
from app.api.exports import google_local_inventory
from app.api.feedback import post_feedback
from app.api.health import health, ready
from app.api.metrics import metrics
from app.api.products import get_product, put_product, upload_products
from app.api.reports import reconciliation_csv, reconciliation_summary
from app.api.stores import get_store, list_stores, put_store, upload_stores


def route_handlers() -> list[Any]:
    return [
        health,
        ready,
        list_stores,
        get_store,
        put_store,
        upload_stores,
        get_product,
        put_product,
        upload_products,
        store_availability,
        nearby_availability,
        google_local_inventory,
        post_feedback,
        metrics,
        *admin_handlers(),
        reconciliation_csv,
        reconciliation_summary,
        upload_counts,
    ]
