"""Solvimon meter data: events ingested, listed and deleted over /v1/ingest/… and /v1/events/…."""
