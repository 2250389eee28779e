"""The go-live toolkit: reconcile against the current billing system (more to come: readiness
check, shadow cohorts, cutover, backfill, rollback, monitoring)."""
