"""Two Solvimon writes at once, in a known order: one is held after it validated its catalog
(before it takes the environment's lock and stores anything) while the other runs to the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from ratecard.services import subscription_changes


def held_while(monkeypatch: pytest.MonkeyPatch, held: Callable[[], Any], meanwhile: Callable[[], Any]
               ) -> tuple[Any, Any]:
    """Run `held` on a thread until its catalog is validated, run `meanwhile` to its end, then let
    `held` go on; returns (what `held` returned, what `meanwhile` returned)."""
    validating, go_on = threading.Event(), threading.Event()
    real = subscription_changes.check_document

    def checked_then_held(document: Any) -> Any:
        result = real(document)
        validating.set()
        assert go_on.wait(30)
        return result

    answers: dict[str, Any] = {}

    def run_held() -> None:
        answers["held"] = held()

    monkeypatch.setattr(subscription_changes, "check_document", checked_then_held)
    worker = threading.Thread(target=run_held)
    worker.start()
    try:
        assert validating.wait(30)
        monkeypatch.setattr(subscription_changes, "check_document", real)
        other = meanwhile()
    finally:
        go_on.set()
        worker.join(30)
    assert not worker.is_alive(), "the held write never finished"
    return answers["held"], other
