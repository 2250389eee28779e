"""Invoice emails over SMTP: the message (plain text, attachments) and the sending.

The server comes from the environment (RATECARD_SMTP_HOST, RATECARD_SMTP_PORT, RATECARD_SMTP_USER,
RATECARD_SMTP_PASSWORD, RATECARD_SMTP_STARTTLS), never from the catalog. Addresses and names go
into headers, so each is checked first: one plain address, no CR/LF or other control characters
(a newline in a name would add headers of the sender's choosing).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

TIMEOUT = 30.0  # seconds for each SMTP step
_CONTROL = re.compile("[\x00-\x1f\x7f\u2028\u2029\x85]")
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class MailRefused(ValueError):
    """An address, name or setting that cannot go into an email."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # maintype/subtype
    data: bytes


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    starttls: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if environ is None else environ
        host = env.get("RATECARD_SMTP_HOST")
        if not host:
            raise MailRefused("set RATECARD_SMTP_HOST (and RATECARD_SMTP_PORT, RATECARD_SMTP_USER, "
                              "RATECARD_SMTP_PASSWORD, RATECARD_SMTP_STARTTLS) to send invoices")
        starttls = (env.get("RATECARD_SMTP_STARTTLS") or "1").strip().lower() not in ("0", "false", "no", "off")
        port_text = env.get("RATECARD_SMTP_PORT") or ("587" if starttls else "25")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise MailRefused(f"RATECARD_SMTP_PORT must be a port number, got {port_text!r}")
        user = env.get("RATECARD_SMTP_USER") or None
        if user and not starttls:
            raise MailRefused("RATECARD_SMTP_USER needs RATECARD_SMTP_STARTTLS: a password is never sent in clear")
        return cls(host, int(port_text), user, env.get("RATECARD_SMTP_PASSWORD") or None, starttls)


def checked_address(value: str | None, what: str) -> str:
    if not value or len(value) > 254 or not _ADDRESS.fullmatch(value):
        raise MailRefused(f"{what} {value!r} is not one email address (name@example.com)")
    return value


def checked_name(value: str | None, what: str) -> str:
    text = value or ""
    if _CONTROL.search(text) or len(text) > 200:
        raise MailRefused(f"{what} {text[:60]!r} holds line breaks or control characters, or is too long")
    return text


def invoice_message(*, sender: str, sender_name: str | None, recipient: str, recipient_name: str | None,
                    subject: str, body: str, attachments: Sequence[Attachment]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(checked_name(sender_name, "the sender's name"), addr_spec=checked_address(sender, "sender"))
    message["To"] = Address(checked_name(recipient_name, "the customer's name"),
                            addr_spec=checked_address(recipient, "recipient"))
    message["Subject"] = checked_name(subject, "the subject")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    message.set_content(body)
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/", 1)
        message.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                               filename=checked_name(attachment.filename, "the attachment's name"))
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand the message to the server; smtplib.SMTPException or OSError when it is not accepted."""
    with smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT) as server:
        if settings.starttls:
            server.starttls(context=ssl.create_default_context())
        if settings.user:
            server.login(settings.user, settings.password or "")
        server.send_message(message)
