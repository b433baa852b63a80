"""The knobs of the simulated retail world, and named profiles of it.

Every rate and share the simulator uses lives here, so a profile is a small,
reviewable diff against the default world rather than a fork of the code.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Rate = Annotated[float, msgspec.Meta(ge=0.0)]
Hours = Annotated[float, msgspec.Meta(ge=0.0)]


class CategoryTraits(msgspec.Struct, frozen=True):
    """How a product category behaves: loss pressure and how often it is looked up."""

    name: str
    weight: Rate
    shrink_mult: Rate
    lookup_mult: Rate = 1.0
    speed_mult: Rate = 1.0


DEFAULT_CATEGORIES: tuple[CategoryTraits, ...] = (
    CategoryTraits("grocery", 0.30, 0.5, lookup_mult=0.5, speed_mult=1.8),
    CategoryTraits("household", 0.18, 0.8),
    CategoryTraits("personal_care", 0.14, 1.5),
    CategoryTraits("cosmetics", 0.08, 3.0, lookup_mult=1.3),
    CategoryTraits("electronics", 0.08, 3.0, lookup_mult=2.5, speed_mult=0.3),
    CategoryTraits("toys", 0.10, 1.5, lookup_mult=1.5, speed_mult=0.6),
    CategoryTraits("apparel", 0.12, 2.0, lookup_mult=1.2, speed_mult=0.5),
)


class WorldParams(msgspec.Struct, frozen=True, kw_only=True):
    """Rates and shares of the simulated world (per store/sku pair unless noted)."""

    timezone: str = "Europe/Amsterdam"
    warmup_days: Annotated[int, msgspec.Meta(ge=0)] = 21
    # --- demand -------------------------------------------------------------
    sale_rate_median: Rate = 0.9  # shoppers per day for a median sku in an average store
    sale_rate_sigma: Rate = 1.25  # log-normal spread of sku speed: many slow, a few fast
    store_size_sigma: Rate = 0.35
    weekend_uplift: Rate = 1.45  # Saturday multiplier; Sunday is milder
    promo_share: Share = 0.06  # skus that get a promotion during the period
    promo_uplift_min: Rate = 1.8
    promo_uplift_max: Rate = 4.0
    promo_days_min: Annotated[int, msgspec.Meta(ge=1)] = 3
    promo_days_max: Annotated[int, msgspec.Meta(ge=1)] = 7
    multi_unit_share: Share = 0.12  # shoppers who want 2+ units
    bulk_share: Share = 0.02  # shoppers who want 3–6 units
    partial_buy_share: Share = 0.6  # shoppers who take what is there when short
    return_share: Share = 0.025  # sales returned within days
    online_order_share: Share = 0.07  # online orders per in-store shopper
    # --- lookups (visits) -----------------------------------------------------
    lookup_share: Share = 0.45  # in-store shoppers who looked the item up first
    travel_min_minutes: Rate = 20.0
    travel_median_minutes: Rate = 50.0
    travel_max_minutes: Rate = 180.0
    # --- loss and record errors ----------------------------------------------
    shrink_per_sale: Rate = 0.02  # unrecorded units lost per unit of demand
    shrink_floor_per_day: Rate = 0.006  # theft/damage even on slow movers
    bad_store_share: Share = 0.2  # stores with much worse loss
    bad_store_mult: Rate = 2.5
    scan_error_share: Share = 0.01  # sales recorded with the wrong quantity
    receiving_error_share: Share = 0.04  # receipts recorded with a different quantity
    misplace_per_day: Rate = 0.015  # units that become unfindable, still on record
    misplace_found_days: Rate = 6.0  # mean time before a misplaced unit is found again
    found_recorded_share: Share = 0.3  # re-found units written back on with an adjustment
    damage_writeoff_per_day: Rate = 0.004  # recorded write-offs (adjustment −qty)
    # --- replenishment and the back room ------------------------------------
    lead_days_min: Annotated[int, msgspec.Meta(ge=1)] = 1
    lead_days_max: Annotated[int, msgspec.Meta(ge=1)] = 3
    safety_days: Rate = 1.5
    cover_days: Rate = 6.0
    supplier_short_share: Share = 0.0  # single orders the distribution centre cannot ship
    dc_outage_share: Share = 0.22  # skus the distribution centre runs out of (chain-wide, days)
    dc_outage_days_min: Annotated[int, msgspec.Meta(ge=1)] = 3
    dc_outage_days_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    shelf_days: Rate = 3.0  # shelf capacity in days of demand
    shelf_min: Annotated[int, msgspec.Meta(ge=1)] = 3
    shelf_max: Annotated[int, msgspec.Meta(ge=1)] = 120  # was 40: top sellers held < 1 day
    refill_trigger: Share = 0.3  # staff refill when the shelf is below this share
    restock_hours_median: Hours = 1.5  # back room → shelf delay, varies by store
    restock_hours_sigma: Rate = 0.7
    slow_store_share: Share = 0.15  # stores whose shelf filling lags badly
    slow_store_mult: Rate = 3.0
    forget_restock_share: Share = 0.03  # refill tasks dropped until the next day
    # --- counts and feedback -------------------------------------------------
    cycle_count_per_day: Rate = 1 / 45  # scheduled cycle counts per pair
    count_error_share: Share = 0.08  # counts off by a unit or two
    count_after_short_share: Share = 0.5  # a short pick prompts a count
    shelf_count_per_day: Rate = 1 / 25  # staff shelf_count feedback
    pick_delay_hours_max: Hours = 4.0
    pick_checks_back_room_share: Share = 0.5
    # --- publication ---------------------------------------------------------
    pos_lag_median_seconds: Rate = 90.0
    pos_lag_sigma: Rate = 0.9
    outage_per_store_day: Rate = 0.04  # POS outages (events held, then a burst)
    outage_hours_min: Hours = 1.0
    outage_hours_max: Hours = 8.0
    laggy_store_share: Share = 0.1  # stores with many more outages
    laggy_store_mult: Rate = 5.0
    redelivery_share: Share = 0.005  # same event_id published again later
    late_share: Share = 0.003  # events entered hours to days late
    late_hours_max: Hours = 48.0
    feedback_lag_median_seconds: Rate = 120.0
    snapshot_hour_local: Annotated[int, msgspec.Meta(ge=0, le=23)] = 6
    snapshot_publish_minutes_min: Rate = 60.0
    snapshot_publish_minutes_max: Rate = 120.0
    snapshot_late_share: Share = 0.1  # published hours late
    snapshot_missing_share: Share = 0.07  # never published
    categories: tuple[CategoryTraits, ...] = DEFAULT_CATEGORIES


# The default world before it was checked against published out-of-stock causes
# (docs/simulator.md): shelf gaps in front of a stocked back room were ~58% of shelf
# out-of-stocks against ~25% reported; kept as the harsher ``shelf_gap`` world.
_SHELF_GAP = WorldParams(
    shelf_max=40, restock_hours_median=2.0, forget_restock_share=0.05, dc_outage_share=0.0
)

PROFILES: dict[str, WorldParams] = {
    "default": WorldParams(),
    "shelf_gap": _SHELF_GAP,
    # Theft-heavy stores and sloppier receiving: more phantom stock on the book.
    "high_shrink": msgspec.structs.replace(
        _SHELF_GAP,  # reported as it was
        shrink_per_sale=0.05,
        shrink_floor_per_day=0.012,
        bad_store_share=0.35,
        receiving_error_share=0.08,
        misplace_per_day=0.03,
        cycle_count_per_day=1 / 60,
    ),
    # POS feed that stalls: frequent multi-hour outages, more late and repeated events.
    "laggy_pos": WorldParams(
        pos_lag_median_seconds=600.0,
        pos_lag_sigma=1.3,
        outage_per_store_day=0.25,
        outage_hours_max=14.0,
        laggy_store_share=0.3,
        redelivery_share=0.03,
        late_share=0.02,
        snapshot_late_share=0.3,
        snapshot_missing_share=0.15,
    ),
    # Stock lands in the back room and sits there: shelf gaps while the book is fine.
    "slow_shelf": WorldParams(
        restock_hours_median=4.5,
        slow_store_share=0.3,
        forget_restock_share=0.12,
        shelf_days=2.0,
        shelf_max=40,  # reported as it was
        dc_outage_share=0.0,
    ),
    # Lean stock (for evaluation, issue 3): a long-tail assortment of slow sellers
    # (median 0.3 shoppers a day against 0.9) kept on little cover (reorder at 0.5
    # safety days, order up to 3 days of demand against 1.5 and 6), as in small
    # formats and long-tail ranges where most items sit at 1–4 units. Most books
    # are then within a fixed 2-unit buffer, where the book-only rule withholds
    # in-stock items; everything else is the default world.
    "lean_stock": WorldParams(sale_rate_median=0.3, safety_days=0.5, cover_days=3.0),
    # A well-run chain: accurate records, quick shelf filling, frequent counts.
    "tidy": WorldParams(
        shrink_per_sale=0.008,
        shrink_floor_per_day=0.002,
        bad_store_share=0.05,
        receiving_error_share=0.01,
        misplace_per_day=0.004,
        restock_hours_median=1.0,
        slow_store_share=0.0,
        forget_restock_share=0.01,
        cycle_count_per_day=1 / 20,
        shelf_max=40,
        dc_outage_share=0.0,
    ),
}


def profile(name: str) -> WorldParams:
    """The named profile; a ``KeyError`` lists the known names."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
