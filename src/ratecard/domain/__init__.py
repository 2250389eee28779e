"""The billing mathematics: pure functions and value objects, no I/O, no clock, no database.

Nothing in this package imports from the rest of ratecard.
"""
