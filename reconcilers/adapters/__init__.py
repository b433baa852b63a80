"""Vendor feed adapters: translate a vendor's shape into the data contract, then store
it through the same paths as contract feeds (docs/adapters.md).

``reconcilers.jobs`` runs a feed whose ``format`` is not ``contract`` with the
adapter's puller that format names.
"""
