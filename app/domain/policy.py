"""Promise policy: safety buffers, low-stock line and the staleness limit.

A policy is data (loaded from a TOML file at the edge); these are the rules that
read it. The most specific buffer rule wins: sku, then store+category, then
category, then store, then the default.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec

Units = Annotated[int, msgspec.Meta(ge=0)]


class BufferRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Minimum units held back, for a store, a category, both, or one sku."""

    units: Units
    store_id: str | None = None
    category: str | None = None
    sku: str | None = None

    def __post_init__(self) -> None:
        if self.store_id is None and self.category is None and self.sku is None:
            raise ValueError("a buffer rule needs store_id, category or sku")

    def specificity(self) -> int:
        if self.sku is not None:
            return 4 if self.store_id is not None else 3
        if self.store_id is not None and self.category is not None:
            return 2
        return 1 if self.category is not None else 0

    def matches(self, store_id: str, sku: str, category: str | None) -> bool:
        return (
            (self.store_id is None or self.store_id == store_id)
            and (self.sku is None or self.sku == sku)
            and (self.category is None or self.category == category)
        )


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What it takes to make a promise.

    - ``safety_buffer``: default units held back before anything is promised.
    - ``low_stock_below``: a promise with fewer promisable units than this
      (book − buffer) is shown as low stock.
    - ``max_data_age``: no promise when the newest data for the store is older.
    - ``confidence_threshold``: no promise below this P(enough on the shelf at arrival).
    - ``arrival_horizon``: how far ahead a shopper who did not say when is assumed
      to arrive (sales in that time are held back).
    """

    safety_buffer: Units = 2
    low_stock_below: Annotated[int, msgspec.Meta(ge=1)] = 3
    max_data_age: timedelta = timedelta(hours=6)
    buffers: tuple[BufferRule, ...] = ()
    confidence_threshold: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.9
    arrival_horizon: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        if self.max_data_age <= timedelta(0):
            raise ValueError("max_data_age must be positive")
        if self.arrival_horizon < timedelta(0):
            raise ValueError("arrival_horizon must not be negative")

    def buffer_for(self, store_id: str, sku: str, category: str | None) -> int:
        """Safety buffer for a (store, sku): the most specific matching rule."""
        if not self.buffers:  # the usual policy: asked per visit
            return self.safety_buffer
        best: BufferRule | None = None
        for rule in self.buffers:
            if rule.matches(store_id, sku, category) and (
                best is None or rule.specificity() > best.specificity()
            ):
                best = rule
        return self.safety_buffer if best is None else best.units
