"""Backtest datasets: a simulated retail world that writes them, a reader, and the scorer.

``simulator``/``world`` make the hidden truth and the recorded feeds, ``writer``
lays them out as the contract's dataset directory, ``dataset`` reads any such
directory back as one time-ordered stream, and ``report`` scores policies.
"""
