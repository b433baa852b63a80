"""Reason codes a badge carries, each with the plain words shown to people."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NO_DATA = "no_data"
    STALE_DATA = "stale_data"
    OUT_OF_STOCK = "out_of_stock"
    WITHIN_SAFETY_BUFFER = "within_safety_buffer"
    BELOW_WANTED = "below_wanted"
    MARGIN_OK = "margin_ok"
    FEW_LEFT = "few_left"
    COUNTED = "recently_counted"


PLAIN_WORDS: dict[Reason, str] = {
    Reason.NO_DATA: "No stock record for this item at this store yet.",
    Reason.STALE_DATA: "The newest stock data for this store is too old to promise on.",
    Reason.OUT_OF_STOCK: "The record shows no sellable units.",
    Reason.WITHIN_SAFETY_BUFFER: "The units on record are all inside the safety buffer.",
    Reason.BELOW_WANTED: "Fewer units beyond the safety buffer than wanted.",
    Reason.MARGIN_OK: "Enough units on record beyond the safety buffer.",
    Reason.FEW_LEFT: "Only a few units beyond the safety buffer.",
    Reason.COUNTED: "The record rests on a physical count newer than the warehouse snapshot.",
}
