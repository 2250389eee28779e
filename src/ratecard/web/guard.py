"""The console's outer layer: bounded request bodies and the security headers of every answer.

A body is never read past its limit: 64 KiB for a form, 20 MiB for an upload (a legacy export or
an event file). The declared Content-Length is checked first, and a streamed body is counted as it
arrives. The headers forbid framing (clickjacking), inline scripts and styles (a stored
`<script>` could not run even if escaping failed), and caching of pages that show billing data.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORM_LIMIT = 64 * 1024
UPLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_SUFFIX = "/upload"

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def body_limit(path: str) -> int:
    return UPLOAD_LIMIT if path.endswith(UPLOAD_SUFFIX) else FORM_LIMIT


class ConsoleGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        static = "/static/" in path

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        limit = body_limit(path)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(with_headers, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, with_headers)
        except _TooLarge:
            await _too_large(with_headers, limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    text = f"This request is larger than the {limit // 1024} KiB this page accepts.".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})
