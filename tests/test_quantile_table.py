"""The held-back quantile read from a table gives the summed series' answer for every mean."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from app.domain.confidence import _TABLES, _summed_quantile, negbin_quantile


@given(st.floats(0.05, 0.995), st.floats(0.0, 400.0))
def test_the_table_gives_the_summed_quantile(level: float, mean: float) -> None:
    assert negbin_quantile(level, mean) == _summed_quantile(level, mean, 2.0)


def test_the_table_near_its_steps_and_out_of_range() -> None:
    for level in (0.9, 0.5, 0.99):
        negbin_quantile(level, 1e9)  # builds the whole table
        table = _TABLES[level]
        assert table is not None
        for edges in (table.short_of[:60], table.sure_by[:60]):
            for m0 in edges:
                for d in range(-20, 21):
                    mean = m0 * (1 + d * 1e-10)
                    assert negbin_quantile(level, mean) == _summed_quantile(level, mean, 2.0)
    assert negbin_quantile(0.9, math.nan) == 0  # as the sum: NaN stops it at once
    assert negbin_quantile(0.9, 0.0) == 0
    assert negbin_quantile(1.0, 3.0) == _summed_quantile(1.0, 3.0, 2.0)  # no table
    assert negbin_quantile(0.9, 3.0, size=1.5) == _summed_quantile(0.9, 3.0, 1.5)
