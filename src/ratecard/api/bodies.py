"""Request bodies read with a size limit, so no request can make the server buffer more."""

from __future__ import annotations

from fastapi import Request

from .errors import ApiError

MAX_BYTES = 10 * 1024 * 1024


async def read_limited_body(request: Request, limit: int = MAX_BYTES) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (never buffered beyond it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
