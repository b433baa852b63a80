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
    CONFIDENT = "confident"
    LOW_CONFIDENCE = "low_confidence"
    POS_QUIET = "pos_quiet"
    SILENT_SHELF = "silent_shelf"
    LIKELY_IN_BACK_ROOM = "likely_in_back_room"
    SHELF_HOLDS_FEWER = "shelf_holds_fewer"
    RECENT_LOSS = "recent_loss"
    SOURCES_DISAGREE = "sources_disagree"
    SELLING_FAST = "selling_fast"


PLAIN_WORDS: dict[Reason, str] = {
    Reason.NO_DATA: "No stock record for this item at this store yet.",
    Reason.STALE_DATA: "The newest stock data for this store is too old to promise on.",
    Reason.OUT_OF_STOCK: "The record shows no sellable units.",
    Reason.WITHIN_SAFETY_BUFFER: "The units on record are all inside the safety buffer.",
    Reason.BELOW_WANTED: "Fewer units beyond the safety buffer than wanted.",
    Reason.MARGIN_OK: "Enough units on record beyond the safety buffer.",
    Reason.FEW_LEFT: "Only a few units beyond the safety buffer.",
    Reason.COUNTED: "The record rests on a physical count newer than the warehouse snapshot.",
    Reason.CONFIDENT: "Confident the units will be on the shelf when you arrive.",
    Reason.LOW_CONFIDENCE: "Not confident enough that the units will be on the shelf on arrival.",
    Reason.POS_QUIET: "The store's tills have gone quiet for longer than usual; recent sales may "
    "not be on record yet.",
    Reason.SILENT_SHELF: "No sales for longer than usual for this item: the shelf may be empty "
    "whatever the record says.",
    Reason.LIKELY_IN_BACK_ROOM: "A delivery arrived recently and may not be on the shelf yet.",
    Reason.SHELF_HOLDS_FEWER: "The shelf usually holds fewer units than wanted, or than "
    "will sell before you arrive; the rest may be in the back room.",
    Reason.RECENT_LOSS: "This store and category lose units without a record; some on record "
    "may be gone.",
    Reason.SOURCES_DISAGREE: "A recent count differed a lot from the record.",
    Reason.SELLING_FAST: "Selling fast: units are held back for sales before you arrive.",
}
