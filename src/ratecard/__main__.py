"""`python -m ratecard`: the same as the `ratecard` command (how `invoices generate --workers N`
starts its worker processes with the interpreter it runs on)."""

from ratecard.cli import main

raise SystemExit(main())
