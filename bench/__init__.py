"""Benchmarks for ratecard: `python -m bench.run` (or `make bench`) from the repo root.

Each benchmark measures ratecard and, in the same run, the machine's own limit for the same
work (a bare INSERT/COPY, a bare GROUP BY), so the ratio says how close the code gets to the
hardware. See bench/RESULTS.md.
"""
