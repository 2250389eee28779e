"""Collecting the money of final invoices: Stripe charges and refunds (through an outbox that
`ratecard payments run` works off), dunning, Stripe's webhooks and invoice emails over SMTP."""
