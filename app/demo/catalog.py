"""Demo stores and products: five shops in Lyon and a few hundred skus, from a seed.

Fixed stores (so the banner's coordinates always make sense) and generated
products (so a seed changes the assortment but never its shape).
"""

from __future__ import annotations

import csv
import io
import random

import msgspec

from app.domain.model import Product, Store

# A shopper standing at Place des Terreaux, central Lyon: every demo store is within 5 km.
SHOPPER_LAT = 45.7674
SHOPPER_LON = 4.8343

STORES: tuple[Store, ...] = (
    Store(
        store_id="LYON-01",
        name="Lyon Part-Dieu",
        lat=45.7606,
        lon=4.8590,
        postal_code="69003",
        timezone="Europe/Paris",
    ),
    Store(
        store_id="LYON-02",
        name="Lyon Bellecour",
        lat=45.7578,
        lon=4.8320,
        postal_code="69002",
        timezone="Europe/Paris",
    ),
    Store(
        store_id="LYON-03",
        name="Lyon Confluence",
        lat=45.7413,
        lon=4.8180,
        postal_code="69002",
        timezone="Europe/Paris",
    ),
    Store(
        store_id="LYON-04",
        name="Villeurbanne Gratte-Ciel",
        lat=45.7686,
        lon=4.8800,
        postal_code="69100",
        timezone="Europe/Paris",
    ),
    Store(
        store_id="LYON-05",
        name="Lyon Croix-Rousse",
        lat=45.7745,
        lon=4.8320,
        postal_code="69004",
        timezone="Europe/Paris",
    ),
)

# Names are "<brand> <item>": every category has seven items, every item six brands.
_BRANDS: tuple[str, ...] = ("Ferro", "Atelier", "Volta", "Bricomax", "Nordline", "Rhône Pro")
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "power-tools": (
        "cordless drill 18V",
        "impact driver 18V",
        "jigsaw 650W",
        "circular saw 1200W",
        "angle grinder 125 mm",
        "orbital sander",
        "oscillating multi-tool",
    ),
    "hand-tools": (
        "claw hammer 16 oz",
        "screwdriver set 6-piece",
        "tape measure 8 m",
        "utility knife",
        "spirit level 60 cm",
        "combination pliers",
        "hex key set",
    ),
    "paint": (
        "wall paint white 2.5 L",
        "primer 1 L",
        "wood stain oak 750 ml",
        "masking tape 48 mm",
        "paint roller 180 mm",
        "brush set 3-piece",
        "floor paint grey 2.5 L",
    ),
    "garden": (
        "garden hose 25 m",
        "bypass pruning shears",
        "potting soil 40 L",
        "watering can 10 L",
        "leaf rake",
        "plant pot 30 cm",
        "lawn seed 1 kg",
    ),
    "lighting": (
        "LED bulb E27 warm",
        "LED spot GU10",
        "desk lamp",
        "ceiling light 40 cm",
        "LED floodlight 30W",
        "LED strip 5 m",
        "motion sensor light",
    ),
    "plumbing": (
        "kitchen mixer tap",
        "rain shower head 25 cm",
        "sink trap 40 mm",
        "PTFE tape 12 m",
        "flexible hose 50 cm",
        "soft-close toilet seat",
        "shower hose 1.5 m",
    ),
    "storage": (
        "storage box 45 L",
        "shelving unit 5 shelves",
        "tool chest 7 drawers",
        "wall hooks x10",
        "drawer organiser",
        "wheeled crate",
        "stackable bin",
    ),
    "fixings": (
        "wood screws 4x40 mm x200",
        "wall plugs 6 mm x100",
        "nails 50 mm 1 kg",
        "hollow wall anchors x20",
        "cable ties 200 mm x100",
        "brass hinges x2",
        "threaded rod M8",
    ),
}
CATEGORIES: tuple[str, ...] = tuple(_CATEGORIES)


def demo_products(seed: int, count: int = 300) -> tuple[Product, ...]:
    """``count`` distinct products (SKU-0001…) spread over the demo categories."""
    rng = random.Random(f"products:{seed}")
    names = [
        (category, f"{brand} {item}")
        for category, items in _CATEGORIES.items()
        for item in items
        for brand in _BRANDS
    ]
    if count > len(names):
        raise ValueError(f"the demo catalogue has at most {len(names)} products")
    chosen = rng.sample(names, count)
    return tuple(
        Product(sku=f"SKU-{i:04d}", name=name, category=category)
        for i, (category, name) in enumerate(chosen, start=1)
    )


def stores_csv(stores: tuple[Store, ...] = STORES) -> str:
    """``stores.csv`` as the contract spells it."""
    return _csv(["store_id", "name", "lat", "lon", "postal_code", "timezone"], stores)


def products_csv(products: tuple[Product, ...]) -> str:
    """``products.csv`` as the contract spells it."""
    return _csv(["sku", "name", "category"], products)


def _csv(columns: list[str], rows: tuple[msgspec.Struct, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = msgspec.structs.asdict(row)
        writer.writerow(["" if values[c] is None else values[c] for c in columns])
    return out.getvalue()
