"""Random variates the simulator needs, on an injected ``random.Random``.

Kept here (instead of numpy) so a run is a pure function of its seed with no
extra dependency; the few draws per (store, sku) pair make this fast enough.
"""

from __future__ import annotations

import math
import random


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson(lam) count: inversion for small means, PTRS rejection for large."""
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k, p = 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        lhs = math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
        if lhs <= -lam + k * loglam - math.lgamma(k + 1):
            return k


def lognormal_median(rng: random.Random, median: float, sigma: float) -> float:
    """Log-normal draw parameterised by its median (easier to reason about than mu)."""
    if median <= 0.0:
        return 0.0
    return median * math.exp(rng.gauss(0.0, sigma))


def bounded_lognormal(rng: random.Random, low: float, median: float, high: float) -> float:
    """Log-normal around ``median`` clipped to [low, high] (travel times, delays)."""
    spread = math.log(high / median) / 2.0 if high > median > 0 else 0.5
    return min(high, max(low, lognormal_median(rng, median, spread)))
