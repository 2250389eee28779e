"""A local stand-in for the part of Stripe's API that ratecard calls, started by the tests: the
real `stripe` client is pointed at it (RATECARD_STRIPE_API_BASE).

It answers GET /v1/customers/{id}, POST /v1/payment_intents, GET /v1/payment_intents/{id} and
POST /v1/refunds in the shapes of Stripe's API reference (a decline is a 402 `card_error` naming
the PaymentIntent it left behind), and honours Idempotency-Key as Stripe does: a request repeated
with a key answers the first answer again (header Idempotent-Replayed: true) without running, and
the same key with other parameters is a 400 `idempotency_error`. It counts what each key ran.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from .http_thread import serving_thread

WEBHOOK_SECRET = "whsec_test_secret"
ACTION_URL = "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_test&payment_intent=pi_{n}"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def event(kind: str, obj: dict[str, Any], livemode: bool = True) -> bytes:
    return json.dumps({"id": f"evt_{abs(hash((kind, obj.get('id'), time.time())))}", "object": "event",
                       "api_version": "2024-06-20", "created": int(time.time()), "type": kind,
                       "livemode": livemode, "data": {"object": obj}}).encode()


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


class StripeStandIn:
    def __init__(self) -> None:
        self.customers: dict[str, str | None] = {}  # customer id -> default payment method
        # customer id -> what its next charges do, in order (then "succeeded"): succeeded | declined | authenticate
        self.script: dict[str, list[str]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.refuse_refunds = False  # answer refunds with a 400, as Stripe does for a disputed charge
        self.refunds: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, tuple[str, int, bytes]] = {}  # key -> (request fingerprint, status, body)
        self.executed: Counter[str] = Counter()  # key -> times it ran (never more than once)
        self.requests: Counter[str] = Counter()  # key -> times it was sent
        # set: a charge is made, then its answer is held until `release` is set (a client killed while
        # it waits never learns the outcome, as when a process dies between the charge and its write)
        self.stall = threading.Event()
        self.release = threading.Event()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = serving_thread(self.server)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> StripeStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def succeeded_charges(self) -> list[dict[str, Any]]:
        return [intent for intent in self.intents.values() if intent["status"] == "succeeded"]

    # ------------------------------------------------------------------ the API
    def handle(self, method: str, path: str, key: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path.startswith("/v1/customers/"):
            customer = path.rsplit("/", 1)[1]
            if customer not in self.customers:
                return 404, _error("invalid_request_error", f"No such customer: '{customer}'", code="resource_missing")
            return 200, {"id": customer, "object": "customer",
                         "invoice_settings": {"default_payment_method": self.customers[customer]}}
        if method == "GET" and path.startswith("/v1/payment_intents/"):
            intent = self.intents.get(path.rsplit("/", 1)[1])
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent", code="resource_missing")
            return 200, intent
        if method == "POST" and path in ("/v1/payment_intents", "/v1/refunds"):
            return self._idempotent(key, body, path)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    def _idempotent(self, key: str | None, body: bytes, path: str) -> tuple[int, dict[str, Any]]:
        fingerprint = hashlib.sha256(path.encode() + body).hexdigest()
        with self._lock:
            if key is not None:
                self.requests[key] += 1
                if key in self.answers:
                    stored, status, answer = self.answers[key]
                    if stored != fingerprint:
                        return 400, _error("idempotency_error", "Keys for idempotent requests can only be used "
                                                                "with the same parameters they were first used with.")
                    return status, {**json.loads(answer), "_replayed": True}
                self.executed[key] += 1
            params = _form(body)
            status, answer = self._create_intent(params) if path == "/v1/payment_intents" else self._refund(params)
            if key is not None:
                self.answers[key] = (fingerprint, status, json.dumps(answer).encode())
        if self.stall.is_set():
            self.release.wait(30)
        return status, answer

    def _create_intent(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        customer = params.get("customer", "")
        plan = self.script.get(customer) or []
        outcome = plan.pop(0) if plan else "succeeded"
        number = next(self._ids)
        intent: dict[str, Any] = {
            "id": f"pi_{number:06d}", "object": "payment_intent", "amount": int(params["amount"]),
            "amount_received": 0, "currency": params["currency"], "customer": customer,
            "payment_method": params.get("payment_method"), "confirmation_method": "automatic",
            "capture_method": "automatic", "livemode": False, "next_action": None, "last_payment_error": None,
            "metadata": {k[len("metadata["):-1]: v for k, v in params.items() if k.startswith("metadata[")},
            "status": "succeeded", "created": int(time.time()),
        }
        self.intents[intent["id"]] = intent
        if outcome == "succeeded":
            intent["amount_received"] = intent["amount"]
            return 200, intent
        if outcome == "authenticate":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "redirect_to_url",
                                     "redirect_to_url": {"url": ACTION_URL.format(n=number), "return_url": None}}
            return 402, _error("card_error", "Your card was declined. This transaction requires authentication.",
                               code="authentication_required", decline_code="authentication_required",
                               payment_intent=intent)
        error = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                 "message": "Your card has insufficient funds."}
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = error
        return 402, _error(**{k: v for k, v in error.items() if k != "type"}, kind="card_error", payment_intent=intent)

    def _refund(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if self.refuse_refunds:
            return 400, _error("invalid_request_error", "Charge ch_1 has been disputed and cannot be refunded.",
                               code="charge_disputed")
        if intent is None or intent["status"] != "succeeded":
            return 400, _error("invalid_request_error", "This PaymentIntent has no successful charge to refund.")
        refund = {"id": f"re_{next(self._ids):06d}", "object": "refund", "amount": int(params["amount"]),
                  "currency": intent["currency"], "payment_intent": intent["id"], "status": "succeeded",
                  "metadata": {}}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not (self.headers.get("Authorization") or "").startswith("Bearer sk_test_"):
                    status, answer = 401, _error("invalid_request_error", "Invalid API Key provided")
                else:
                    status, answer = standin.handle(self.command, self.path.split("?", 1)[0],
                                                    self.headers.get("Idempotency-Key"), body)
                replayed = answer.pop("_replayed", False)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Request-Id", f"req_{next(standin._ids)}")
                    if self.headers.get("Idempotency-Key"):
                        self.send_header("Idempotency-Key", self.headers["Idempotency-Key"])
                    if replayed:
                        self.send_header("Idempotent-Replayed", "true")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed while it waited: it never hears the answer

            do_GET = _answer
            do_POST = _answer

        return Handler


def _error(kind: str | None = None, message: str = "", *, code: str | None = None, decline_code: str | None = None,
           payment_intent: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": extra.pop("kind", None) or kind, "message": message}
    if code:
        error["code"] = code
    if decline_code:
        error["decline_code"] = decline_code
    if payment_intent is not None:
        error["payment_intent"] = payment_intent
    return {"error": error}
