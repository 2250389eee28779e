"""The money rules of collection: minor units, the dunning schedule, catalog settings, and what
may go into an email header."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.payments.amounts import AmountError, from_minor, to_minor
from ratecard.payments.collect import charge_rows
from ratecard.payments.dunning import DAY_US, next_attempt
from ratecard.payments.mail import MailRefused, SmtpSettings, checked_address, checked_name, invoice_message


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("31.98", "EUR", 3198), ("0.01", "USD", 1), ("1500", "JPY", 1500), ("1.234", "KWD", 1234), ("0", "EUR", 0),
    ("-26.87", "EUR", -2687),
])
def test_minor_units_by_hand(amount: str, currency: str, minor: int) -> None:
    assert to_minor(Decimal(amount), currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(("amount", "currency"), [("31.985", "EUR"), ("0.5", "JPY"), ("1000000.00", "EUR")])
def test_amounts_stripe_cannot_charge_exactly_are_refused(amount: str, currency: str) -> None:
    with pytest.raises(AmountError):
        to_minor(Decimal(amount), currency)


@given(st.integers(min_value=-99_999_999, max_value=99_999_999), st.sampled_from(["EUR", "USD", "JPY", "KWD", "GBP"]))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor


def test_dunning_by_hand() -> None:
    first = 1_000 * DAY_US
    assert next_attempt(first, 1, [1, 3, 7]) == first + 1 * DAY_US
    assert next_attempt(first, 2, [1, 3, 7]) == first + 3 * DAY_US
    assert next_attempt(first, 3, [1, 3, 7]) == first + 7 * DAY_US
    assert next_attempt(first, 4, [1, 3, 7]) is None  # uncollectible


@given(st.lists(st.integers(min_value=1, max_value=365), min_size=0, max_size=12, unique=True).map(sorted),
       st.integers(min_value=0, max_value=10**9))
def test_dunning_retries_once_per_day_listed_in_order_then_stops(days: list[int], first_day: int) -> None:
    first = first_day * DAY_US
    retries = []
    failures = 1
    while (at := next_attempt(first, failures, days)) is not None:
        retries.append(at)
        failures += 1
    assert retries == [first + day * DAY_US for day in days]
    assert all(later > earlier for earlier, later in zip(retries, retries[1:], strict=False))
    assert len(retries) == len(days)  # a charge is tried 1 + len(days) times in all


def _entity(**fields: object) -> dict:
    return {"billing_entity": {"name": "Acme", **fields}}


def test_catalog_payment_and_email_settings_are_checked() -> None:
    good, problems = check_document({**_entity(payments={"dunning_days": [2, 5]},
                                               email={"sender": "billing@acme.example", "send_on_finalization": True}),
                                     "customers": [{"reference": "acme", "stripe_customer_id": "cus_NffrFeUfNV2Hib"}]})
    assert problems == [] and good is not None
    assert good.billing_entity.payments.dunning_days == [2, 5]
    for bad in (_entity(payments={"dunning_days": [3, 1]}), _entity(payments={"dunning_days": [0]}),
                _entity(email={"sender": "a@b.example\r\nBcc: x@y.example"}),
                _entity(email={"sender_name": "Acme\nBcc: x@y.example"}),
                {"customers": [{"reference": "acme", "stripe_customer_id": "cus_1; DROP TABLE"}]}):
        assert check_document(bad)[1], bad


@pytest.mark.parametrize("address", ["a@b.example\r\nBcc: c@d.example", "a@b.example,c@d.example", "<a@b.example>",
                                     "=HYPERLINK(\"x\")@b.example", "a@b", "a" * 300 + "@b.example"])
def test_hostile_addresses(address: str) -> None:
    with pytest.raises(MailRefused):
        checked_address(address, "recipient")


@pytest.mark.parametrize("name", ["Acme\r\nBcc: x@y.example", "Acme\nX: y", "Acme\x00", "Acme\u2028Bcc: x"])
def test_names_with_line_breaks_are_refused(name: str) -> None:
    with pytest.raises(MailRefused):
        checked_name(name, "the customer's name")


def test_a_name_that_looks_like_markup_stays_text_in_the_header() -> None:
    message = invoice_message(sender="billing@acme.example", sender_name="Acme", recipient="ap@x.example",
                              recipient_name="<script>alert(1)</script>, \"Quote\"", subject="Invoice RC-1",
                              body="Total", attachments=[])
    assert message["To"].addresses[0].addr_spec == "ap@x.example"
    assert len(message["To"].addresses) == 1


def test_smtp_settings_from_the_environment() -> None:
    with pytest.raises(MailRefused, match="RATECARD_SMTP_HOST"):
        SmtpSettings.from_environment({})
    assert SmtpSettings.from_environment({"RATECARD_SMTP_HOST": "mail"}) == SmtpSettings("mail", 587, None, None, True)
    with pytest.raises(MailRefused, match="in clear"):
        SmtpSettings.from_environment({"RATECARD_SMTP_HOST": "mail", "RATECARD_SMTP_STARTTLS": "0",
                                       "RATECARD_SMTP_USER": "u"})
    with pytest.raises(MailRefused, match="port"):
        SmtpSettings.from_environment({"RATECARD_SMTP_HOST": "mail", "RATECARD_SMTP_PORT": "99999"})


def test_an_invoice_stripe_cannot_take_waits_for_a_transfer_and_finalization_still_succeeds() -> None:
    (row,) = charge_rows("live", [{"id": 7, "customer": "acme", "currency": "EUR", "total": Decimal("2500000.00")}],
                         {"acme": "cus_acme"}, 0)
    assert (row["method"], row["status"], row["amount_minor"]) == ("manual", "pending", 250_000_000)
    assert "more than Stripe charges at once" in row["failure"]
    (zero,) = charge_rows("live", [{"id": 8, "customer": "acme", "currency": "EUR", "total": Decimal("-5.00")}],
                          {"acme": "cus_acme"}, 0)
    assert (zero["status"], zero["amount_minor"], zero["reference"]) == ("succeeded", 0, "nothing to collect")


def test_a_total_no_payment_record_holds_is_uncollectible_with_its_reason_and_the_others_are_kept() -> None:
    """Prices and usage are each bounded below 1e20, so a total can reach 1e21 euros; a payment
    record holds at most 2^63 - 1 cents. That invoice's row says so, the others of the same batch
    (written by one insert) are as usual."""
    huge, normal = charge_rows("live", [
        {"id": 9, "customer": "whale", "currency": "EUR", "total": Decimal("1000000000000000000000.00")},
        {"id": 10, "customer": "acme", "currency": "EUR", "total": Decimal("12.34")}], {"acme": "cus_acme"}, 0)
    assert (huge["status"], huge["amount_minor"]) == ("uncollectible", 0)
    assert "1000000000000000000000.00 EUR is more than a payment record holds" in huge["failure"]
    assert (normal["method"], normal["status"], normal["amount_minor"]) == ("stripe", "pending", 1234)
    largest, = charge_rows("live", [{"id": 11, "customer": "acme", "currency": "EUR",
                                     "total": Decimal("92233720368547758.07")}], {}, 0)
    assert (largest["status"], largest["amount_minor"]) == ("pending", 2**63 - 1)  # the largest that fits
