"""How the API's `{key:path}` routes share the URL space.

A reference may contain `/` (Solvimon's SDK sends it as `%2F`, which the server decodes before
routing), so a resource's `GET /v1/customers/{key:path}` would also match
`/v1/customers/acme/entitlements` and answer "customer 'acme/entitlements' does not exist".
So a route's `{…:path}` parameter never ends with, nor contains, `/<sub-resource word>` where
the word is one of the sub-resources or actions Solvimon's API (or ratecard's own) puts after a
reference (`entitlements`, `activate`, `lines`, …): such a request goes to its own route,
whichever module declares it and in whatever order, or, when ratecard has none, to the 404
"not implemented" answer.

The price: a reference containing one of these words as a whole path segment after a `/`
(`acme/entitlements`) cannot be addressed in a path.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path

# every path segment Solvimon's API (solvimon-python-sdk 0.0.4b0) puts right after a path
# parameter, plus ratecard's own sub-resources; tests/api/test_routing.py checks the SDK's part
SUB_RESOURCES = (
    "accept", "activate", "add-line", "approve", "archive", "balance", "cancel", "cancel-dunning-actions",
    "change-plan", "complete", "copy", "create-subscription", "credit", "credit_and_copy", "currencies",
    "deactivate", "decline", "decrypt", "delete", "delete-line", "deprecate", "download", "download-e-invoice",
    "download-url", "entitlements", "event_trace", "export_to_erp", "finalize", "forget", "items", "lines",
    "memberships", "meter-data-file", "migrate", "on-demand-pricing-items", "pause", "pay", "payment-attempts",
    "payments", "pdf", "recipient-action", "redemptions", "refresh", "refresh-e-invoices", "refund", "reject",
    "report", "request-signature", "resend", "resubmit-e-invoice", "reverse", "revoke", "secret-key", "send",
    "send-penalty-box-payload", "send-test", "send_by_email", "status", "teams", "trigger", "ubl21",
    "up-to-date", "update-e-invoice-status", "update-payment-method", "values", "void", "wallets",
    # ratecard's own
    "upcoming-invoice", "change", "charges", "ubl", "facturx", "payment", "deliveries", "mark-paid",
)
_WORDS = "|".join(re.escape(word) for word in sorted(SUB_RESOURCES, key=len, reverse=True))


class ReferenceConvertor(Convertor[str]):
    """Like Starlette's `path` convertor, minus any `/<sub-resource>` segment."""

    regex = rf"(?:(?!/(?:{_WORDS})(?:/|$)).)+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("reference", ReferenceConvertor())


def arrange(router: APIRouter) -> APIRouter:
    """Give every `{…:path}` parameter of the router's routes the reference convertor (call
    before the router is included; calling it again changes nothing)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and ":path}" in route.path:
            route.path = route.path.replace(":path}", ":reference}")
            route.path_regex, route.path_format, route.param_convertors = compile_path(route.path)
    return router
