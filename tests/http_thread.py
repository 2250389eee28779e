"""The tests' local HTTP stand-ins (Stripe, webhook receivers) served from a daemon thread."""

from __future__ import annotations

import socketserver
import threading

# how often serve_forever looks for shutdown(): socketserver's default, 0.5 s, made every test
# that stops a stand-in wait up to half a second in its teardown (~0.5 s each for ~150 tests)
SHUTDOWN_POLL_SECONDS = 0.02


def serving_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread (not started) that serves `server` until `server.shutdown()`."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                            daemon=True)
