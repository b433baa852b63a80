"""An online calibration map: the model's raw probability → what feedback observed.

Labelled outcomes the service really gets (a pick found or short, a shelf count)
are scored against the raw confidence the engine gives for that moment; the map
is isotonic (pool adjacent violators over fine raw bins, shrunk toward the
identity), so it never reverses the model's order and the badge properties hold.
"""

from __future__ import annotations

import math

BINS = 40
PRIOR_N = 20.0


class Calibration:
    def __init__(self) -> None:
        self.n = [0.0] * BINS
        self.hits = [0.0] * BINS
        self.raw = [0.0] * BINS
        self._map: list[float] | None = None
        self.labels = 0

    @staticmethod
    def _bin(p: float) -> int:
        return min(BINS - 1, max(0, math.floor(p * BINS)))

    def observe(self, raw: float, outcome: bool) -> None:
        i = self._bin(raw)
        self.n[i] += 1
        self.hits[i] += 1.0 if outcome else 0.0
        self.raw[i] += raw
        self.labels += 1
        self._map = None

    def _build(self) -> list[float]:
        blocks: list[list[float]] = []  # [weighted sum, weight, bins]
        for i in range(BINS):
            mid = (i + 0.5) / BINS
            prior_mean = self.raw[i] / self.n[i] if self.n[i] else mid
            w = self.n[i] + PRIOR_N
            blocks.append([self.hits[i] + PRIOR_N * prior_mean, w, 1.0])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                s, w2, c = blocks.pop()
                blocks[-1][0] += s
                blocks[-1][1] += w2
                blocks[-1][2] += c
        out: list[float] = []
        for s, w, c in blocks:
            out.extend([s / w] * int(c))
        return out

    def __call__(self, raw: float) -> float:
        if self._map is None:
            self._map = self._build()
        return self._map[self._bin(raw)]
