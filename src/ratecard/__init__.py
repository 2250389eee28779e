"""ratecard: usage-based billing with the go-live toolkit built in."""

__version__ = "0.1.0"
