"""The operator console: server-rendered pages (Jinja2 + htmx, vendored), served by `ratecard
serve` under /console. Like the CLI and the API it calls the service layer only."""
