"""Scheduled reconcilers: pull POS and warehouse feeds, recompute book positions and badges."""
