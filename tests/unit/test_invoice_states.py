"""Invoice states (docs/billing.md): draft -> final (immutable) or void; nothing else."""

from __future__ import annotations

import itertools

import pytest

from ratecard.domain.invoice import STATUSES, TRANSITIONS, InvoiceStateError, check_transition


def test_the_three_statuses() -> None:
    assert set(STATUSES) == {"draft", "final", "void"}
    assert set(TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize("target", ["final", "void"])
def test_a_draft_can_be_finalized_or_voided(target: str) -> None:
    check_transition("draft", target)  # no error


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("final", "draft"),  # a final invoice is immutable: corrections, not edits
        ("final", "void"),
        ("final", "final"),
        ("void", "draft"),
        ("void", "final"),
        ("void", "void"),
    ],
)
def test_final_and_void_invoices_never_change(current: str, target: str) -> None:
    with pytest.raises(InvoiceStateError):
        check_transition(current, target)


def test_the_only_allowed_transitions_are_draft_to_final_and_draft_to_void() -> None:
    allowed = set()
    for current, target in itertools.product(STATUSES, STATUSES):
        try:
            check_transition(current, target)
        except InvoiceStateError:
            continue
        allowed.add((current, target))
    assert allowed == {("draft", "final"), ("draft", "void")}


@pytest.mark.parametrize(("current", "target"), [("paid", "final"), ("draft", "paid"), ("Draft", "final"), ("", "")])
def test_unknown_statuses_are_refused(current: str, target: str) -> None:
    with pytest.raises(InvoiceStateError):
        check_transition(current, target)


def test_the_error_names_both_states() -> None:
    with pytest.raises(InvoiceStateError, match="final.*draft"):
        check_transition("final", "draft")


def test_invoice_state_error_is_a_value_error() -> None:
    assert issubclass(InvoiceStateError, ValueError)
