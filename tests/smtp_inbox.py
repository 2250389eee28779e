"""A local SMTP server for the tests (aiosmtpd), with what it received; the environment points
ratecard at it (no STARTTLS, no login)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@contextmanager
def local_smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port: the controller checks it is up by connecting to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("RATECARD_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RATECARD_SMTP_PORT", str(port))
    monkeypatch.setenv("RATECARD_SMTP_STARTTLS", "0")
    try:
        yield inbox
    finally:
        controller.stop()
