"""Invoice runs: cut invoices at period boundaries, refresh drafts, finalize, void."""
