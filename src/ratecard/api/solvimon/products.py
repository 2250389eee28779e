"""/v1/product-categories, /v1/products, /v1/product-items: what is sold, in Solvimon's shapes.
ratecard prices by plan charge; these resources name what a pricing prices (the edits are
services.resources.products)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ...services.resources import products
from ...services.resources.checks import CONFIG_STATUSES, check_choice
from ...services.resources.model import View
from ...services.resources.products import CATEGORY, ITEM, PRODUCT
from ...store.resources import Resource
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page, sortable
from .common import OBJECT_BODY, json_body, json_response, multi, param
from .config import snapshot
from .search import Field, search, search_body
from .vocabulary import require_object

router = APIRouter(tags=["products"])
OBJECT_TYPE = {CATEGORY: "PRODUCT_CATEGORY", PRODUCT: "PRODUCT", ITEM: "PRODUCT_ITEM"}
PATH = {CATEGORY: "product-categories", PRODUCT: "products", ITEM: "product-items"}


def render(view: View, row: Resource, expand: list[str] | None = None) -> dict[str, Any]:
    body = row.body
    wanted = " ".join(expand or [])
    out: dict[str, Any] = {"object_type": OBJECT_TYPE[row.kind], "id": row.id, "reference": row.reference}
    for key in ("name", "description", "status", "tax_category", "display_order"):
        out[key] = body.get(key)
    if row.kind == PRODUCT:
        out.update(category_id=body.get("category_id"), parent_product_id=body.get("parent_product_id"),
                   product_type=body.get("product_type"))
        category = view.resources.by_id.get(body.get("category_id") or "")
        if "category" in wanted and category is not None:
            out["category"] = render(view, category)
    elif row.kind == ITEM:
        out.update(product_id=body.get("product_id"), type=body.get("type"), model_type=body.get("model_type"),
                   unit_name=body.get("unit_name") or None)
        if body.get("meter"):
            calculation = view.calculation_id(body["meter"])
            out["meter_value_calculation_id"] = calculation
            out["usage_based"] = {"meter_value_calculation_id": calculation}
        product = view.resources.by_id.get(body.get("product_id") or "")
        if "product" in wanted and product is not None:
            out["product"] = render(view, product)
    return {key: value for key, value in out.items() if value is not None}


SORT_KEYS = {"created_at": lambda r: (r.created_at, r.id), "updated_at": lambda r: (r.updated_at, r.id),
             "reference": lambda r: r.reference, "id": lambda r: r.id,
             "name": lambda r: sortable(r.body.get("name")), "display_order": lambda r: sortable(r.body.get(
                 "display_order"))}


def search_fields(kind: str) -> dict[str, Field]:
    """What a search of this kind can name: the fields the list shows, read from the row."""
    fields = {"id": Field(lambda r: r.id), "reference": Field(lambda r: r.reference),
              "name": Field(lambda r: r.body.get("name")), "description": Field(lambda r: r.body.get("description")),
              "tax_category": Field(lambda r: r.body.get("tax_category"), enum=True)}
    if kind != CATEGORY:
        fields["status"] = Field(lambda r: r.body.get("status"), enum=True)
    if kind == PRODUCT:
        fields.update(category_id=Field(lambda r: r.body.get("category_id")),
                      product_type=Field(lambda r: r.body.get("product_type"), enum=True))
    if kind == ITEM:
        fields.update(product_id=Field(lambda r: r.body.get("product_id")),
                      type=Field(lambda r: r.body.get("type"), enum=True),
                      model_type=Field(lambda r: r.body.get("model_type"), enum=True))
    return fields


def _find(caller: Caller, kind: str, key: str) -> tuple[View, Resource]:
    view = snapshot(caller).view
    row = view.find(kind, param(key, "resourceIdOrReference"))
    if row is None:
        raise not_found(products.LABEL[kind], key)
    return view, row


def upsert(caller: Caller, kind: str, data: dict[str, Any], identifier: str | None,
           query: Any) -> tuple[View, Resource]:
    """PUT: update the resource the identifier field names, else create it."""
    for name in ("custom_field_reference", "field_actions"):
        if query.get(name) is not None:
            raise invalid(name, f"{name} is not supported: identify by reference or id")
    if identifier not in (None, "reference", "id"):
        raise invalid("identifier_field", "identifier_field must be reference or id")
    key = data.get("id") if identifier == "id" else data.get("reference")
    if not isinstance(key, str):
        raise invalid(identifier or "reference", f"{identifier or 'reference'} is required to find the resource")
    if snapshot(caller).view.find(kind, param(key, identifier or "reference")) is None:
        if identifier == "id":
            raise not_found(products.LABEL[kind], key)
        return products.create(caller.store, caller.environment, caller.now, kind, data)
    return products.update(caller.store, caller.environment, caller.now, kind, key,
                           {k: v for k, v in data.items() if k != "id"})


def _routes(kind: str) -> None:
    path = f"/v1/{PATH[kind]}"
    label = products.LABEL[kind]

    @router.get(path, summary=f"List {label}s", name=f"list_{kind}")
    def list_rows(request: Request, page: Page = Depends(solvimon_page),
                  caller: Caller = Depends(current_caller)) -> Response:
        view = snapshot(caller).view
        statuses = multi(request, "statuses")
        for status in statuses:
            check_choice(status, "statuses[]", CONFIG_STATUSES)
        filters = {"product_category_id": "category_id", "product_id": "product_id"}
        rows = [r for r in view.resources.of_kind(kind) if not statuses or r.body.get("status") in statuses]
        for query, field in filters.items():
            wanted = param(request.query_params.get(query), query)
            if wanted is not None:
                target = view.find(CATEGORY if field == "category_id" else PRODUCT, wanted)
                rows = [r for r in rows if target is not None and r.body.get(field) == target.id]
        if request.query_params.get("customer_id") is not None:
            rows = []  # ratecard has no customer-specific products
        expand = multi(request, "expand")
        return json_response(paginate(request, rows, page, lambda r: render(view, r, expand), SORT_KEYS,
                                      everything=True))

    @router.post(path + "/search", openapi_extra=OBJECT_BODY, name=f"search_{kind}",
                 summary=f"Search {label}s (search_fields, filter_fields); paged like the list")
    def search_rows(request: Request, body: dict[str, Any] = Depends(search_body),
                    page: Page = Depends(solvimon_page), caller: Caller = Depends(current_caller)) -> Response:
        view = snapshot(caller).view
        expand = multi(request, "expand")
        rows = search(view.resources.of_kind(kind), body, search_fields(kind))
        return json_response(paginate(request, rows, page, lambda r: render(view, r, expand), SORT_KEYS,
                                      everything=True))

    @router.post(path, status_code=201, openapi_extra=OBJECT_BODY, summary=f"Create a {label}",
                 name=f"create_{kind}")
    def create_row(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
        view, row = products.create(caller.store, caller.environment, caller.now, kind, require_object(body))
        return json_response(render(view, row), 201)

    @router.put(path, status_code=201, openapi_extra=OBJECT_BODY, name=f"upsert_{kind}",
                summary=f"Create or update a {label}, found by identifier_field (reference or id)")
    def upsert_row(request: Request, body: Any = Depends(json_body),
                   caller: Caller = Depends(current_caller)) -> Response:
        data = require_object(body)
        view, row = upsert(caller, kind, data, request.query_params.get("identifier_field"),
                           request.query_params)
        return json_response(render(view, row), 201)

    @router.get(path + "/{key}", summary=f"Get a {label} by id or reference", name=f"get_{kind}")
    def get_row(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
        view, row = _find(caller, kind, key)
        return json_response(render(view, row, multi(request, "expand")))

    @router.patch(path + "/{key}", openapi_extra=OBJECT_BODY, summary=f"Update a {label}", name=f"update_{kind}")
    def update_row(key: str, body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
        view, row = products.update(caller.store, caller.environment, caller.now, kind, param(key, "key") or key,
                                    require_object(body))
        return json_response(render(view, row))

    @router.delete(path + "/{key}", summary=f"Delete a {label} nothing uses", name=f"delete_{kind}")
    def delete_row(key: str, caller: Caller = Depends(current_caller)) -> Response:
        view, row = products.delete(caller.store, caller.environment, caller.now, kind, param(key, "key") or key)
        return json_response(render(view, row))

    if kind == CATEGORY:
        return
    for action, target in (("activate", "ACTIVE"), ("archive", "ARCHIVED"), ("deprecate", "DEPRECATED")):
        router.add_api_route(path + "/{key}/" + action, _transition(kind, target), methods=["POST"],
                             name=f"{action}_{kind}", summary=f"Set a {label}'s status to {target}")


def _transition(kind: str, target: str) -> Any:
    def transition(key: str, caller: Caller = Depends(current_caller)) -> Response:
        view, row = products.change_status(caller.store, caller.environment, caller.now, kind,
                                           param(key, "key") or key, target)
        return json_response(render(view, row))

    return transition

for _kind in (CATEGORY, PRODUCT, ITEM):
    _routes(_kind)
