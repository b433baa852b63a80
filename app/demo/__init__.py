"""The demo: a simulated chain of stores whose feeds the service can pull.

``catalog`` and ``simulation`` are pure and seeded (the clock is passed in), so the
same seed tells the same story; ``feed`` renders it in the contract's formats and
``server`` puts it on HTTP. ``files`` writes the folder ``availability demo`` runs
the service from.
"""
