"""A lean HTTP/1.1 keep-alive client for the load generators: each request is built once, as
bytes, before the clock starts; an answer is read with one buffered parse of its status line,
headers and Content-Length body.

Why not http.client: it builds every request and parses every answer with several Python
objects (message headers, a buffered response), ~60-100 µs of CPU per request. The clients
share the server's 2 cores, so their CPU is taken from the server being measured; the bare
baselines have no client cost at all. This client spends ~10-20 µs per request, which keeps the
ratio about the server, not the load generator.
"""

from __future__ import annotations

import socket


def build_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; `exchange` sends prepared bytes and returns (status, body)."""

    def __init__(self, port: int, timeout: float = 120.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            buffer += self._recv()
        head = buffer[:end]
        status = int(head[9:12])
        length = 0
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop >= 0 else len(head)])
        elif b"\r\ntransfer-encoding:" in lower:
            raise RuntimeError("chunked answers are not read by this client")
        start = end + 4
        while len(buffer) < start + length:
            buffer += self._recv()
        self.buffer = buffer[start + length:]
        return status, buffer[start:start + length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()
