"""Load the promise policy (``app.domain.policy.Policy``) from a TOML file.

Example::

    safety_buffer = 2          # default units held back
    low_stock_below = 3        # fewer promisable units than this: "low stock"
    max_data_age = "6h"        # no promise on older store data

    [[buffers]]
    category = "electronics"
    units = 4

    [[buffers]]
    store_id = "S001"
    units = 3
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from app.domain.policy import BufferRule, Policy
from app.settings import SettingsError, convert


def parse_policy(data: dict[str, Any], *, where: str = "policy") -> Policy:
    rules = tuple(
        convert(rule, BufferRule, where=f"{where}: buffers[{i}]")
        for i, rule in enumerate(data.get("buffers", []))
    )
    return convert({**data, "buffers": rules}, Policy, where=where)


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path``, or the built-in defaults when no file is configured."""
    if path is None:
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"policy file {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"policy file {path}: not valid TOML: {exc}") from None
    return parse_policy(data, where=f"policy file {path}")
