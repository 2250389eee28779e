"""Solvimon-compatible configuration over the catalog: customers, meters, meter values and
properties, meter value calculations. Each edit is one locked transaction (store.resources)."""
