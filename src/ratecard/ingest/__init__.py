"""Usage events: parsing (JSONL, CSV, Solvimon shape), validation, matching, idempotent import."""
