"""The Solvimon-compatible resources, driven with the published Solvimon Python SDK
(solvimon-python-sdk 0.0.4b0) against a live uvicorn server, on SQLite and PostgreSQL.

Every request goes through the SDK's typed models and API classes (never hand-written JSON),
except where a test needs what the typed SDK refuses to send (COUNT, whitespace references):
then the SDK's own model is built with `model_construct`, which the SDK still serializes and
sends. ratecard's own resources (catalog apply, invoice runs) are called over plain HTTP.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from ratecard.api.app import create_app
from ratecard.store import open_store
from ratecard.store.invoices import change_status, list_invoices
from ratecard.store.keys import create_key

from ..migrated import at_head
from ..solvimon_sdk import errors, m, sv
from .live_server import Server, free_port

V = "1"  # the SDK's required `version` path argument
# "now" for the tests that read the clock: inside the workspace subscription's first month, after
# the events `event` stamps by default
WORKSPACE_NOW = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)


def pin_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server reads "now" from RATECARD_NOW on every request (it runs in this process)."""
    monkeypatch.setenv("RATECARD_NOW", WORKSPACE_NOW.isoformat().replace("+00:00", "Z"))


# ---------------------------------------------------------------------------------------------
# a live server and SDK clients
# ---------------------------------------------------------------------------------------------


@dataclass
class Live:
    port: int
    live: str
    sandbox: str
    db_url: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, env: str = "live", key: str | None = None) -> sv.ApiClient:
        configuration = sv.Configuration(
            host=self.base,
            api_key={"API-Key": key or (self.live if env == "live" else self.sandbox)},
            no_proxy="*",  # never route 127.0.0.1 through an HTTP(S)_PROXY from the environment
        )
        return sv.ApiClient(configuration)

    def api(self, kind: type, env: str = "live") -> Any:
        return kind(self.client(env))

    def http(self, method: str, path: str, env: str = "live", **kwargs: Any) -> httpx.Response:
        """ratecard's own resources (not Solvimon's): catalog, invoice runs."""
        headers = {"X-API-KEY": self.live if env == "live" else self.sandbox, **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.base, trust_env=False, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def server(db_url: str) -> Iterator[Live]:
    store = open_store(at_head(db_url))
    _, live = create_key(store, "live", 0, "sdk-test")
    _, sandbox = create_key(store, "sandbox", 0, "sdk-test")
    store.dispose()
    port = free_port()
    config = uvicorn.Config(create_app(db_url), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, name="uvicorn-sdk-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Live(port, live, sandbox, db_url)
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=15)


def body_of(exc: errors.ApiException) -> dict:
    """The error envelope the server sent (exc.data is only parsed for statuses the SDK maps)."""
    return json.loads(exc.body)


def event(reference: str, customer: str = "acme", meter: str = "llm_usage", when: datetime | None = None,
          values: dict[str, str] | None = None, properties: dict[str, str] | None = None) -> m.MeterDataCreateRequest:
    return m.MeterDataCreateRequest(
        reference=reference,
        customer_reference=customer,
        meter_reference=meter,
        timestamp=when or datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
        meter_values=[m.MeterDataMeterValueCreateRequest(reference=k, number=v) for k, v in (values or {}).items()],
        meter_properties=[m.MeterDataMeterPropertyCreateRequest(reference=k, value=v)
                          for k, v in (properties or {}).items()],
    )


def send(api: sv.IngestApi, one: m.MeterDataCreateRequest, **query: Any) -> m.MeterData:
    """One event; DYNAMIC unless the test says otherwise (these tests send to meters they never
    declared: STATIC, the default, would refuse them)."""
    query.setdefault("meter_validation", "DYNAMIC")
    return api.post_ingest_meter_data(V, meter_data_create_request=one, **query)


def send_many(api: sv.IngestApi, events: list[m.MeterDataCreateRequest], **query: Any) -> m.MeterDatas:
    query.setdefault("meter_validation", "DYNAMIC")
    return api.post_ingest_meter_datas(V, meter_datas_create_request=m.MeterDatasCreateRequest(meter_datas=events),
                                       **query)


def create_calculation(api: sv.MeterValueCalculationsApi, **fields: Any) -> m.MeterValueCalculation:
    return api.post_meter_value_calculations(
        V, meter_value_calculation_create_request=m.MeterValueCalculationCreateRequest(**fields))


def create_value(api: sv.MeterValuesApi, request: m.MeterValueCreateRequest) -> m.MeterValue:
    return api.post_meter_values(V, meter_value_create_request=request)


def create_customer(api: sv.CustomersApi, request: m.CustomerCreateRequest, **options: Any) -> m.Customer:
    return api.post_customers(V, customer_create_request=request, **options)


def ref(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def setup_llm_meter(live: Live, env: str = "live") -> dict[str, Any]:
    """Values tokens (NUMBER) and latency (NUMBER), property model (ENUM), meter llm_usage."""
    values = live.api(sv.MeterValuesApi, env)
    properties = live.api(sv.MeterPropertiesApi, env)
    meters = live.api(sv.MetersApi, env)
    tokens = create_value(values, m.MeterValueCreateRequest(reference="tokens", name="Tokens", type="NUMBER",
                                                            status="ACTIVE"))
    latency = create_value(values, m.MeterValueCreateRequest(reference="latency_ms", name="Latency", type="NUMBER"))
    model = properties.post_meter_properties(V, meter_property_create_request=m.MeterPropertyCreateRequest(
        reference="model", name="Model", type="ENUM", enum_values=["gpt-4o", "mini"], status="ACTIVE"))
    meter = meters.post_meters(V, meter_create_request=m.MeterCreateRequest(
        reference="llm_usage", name="LLM usage", status="ACTIVE",
        meter_values=[m.MeterMeterValueCreateRequest(reference="tokens", required=True),
                      m.MeterMeterValueCreateRequest(id=latency.id)],
        meter_properties=[m.MeterMeterPropertyCreateRequest(reference="model")]))
    return {"tokens": tokens, "latency": latency, "model": model, "meter": meter}


def catalog_of(live: Live, env: str = "live") -> dict:
    response = live.http("GET", "/v1/catalog", env)
    assert response.status_code == 200, response.text
    return response.json()["catalog"]


def apply_catalog(live: Live, document: dict, env: str = "live") -> None:
    response = live.http("POST", "/v1/catalog", env, content=yaml.safe_dump(document).encode(),
                         headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text


def wait_for_job(api: sv.ReprocessApi, job_id: str, timeout: float = 30) -> m.Reprocess:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get_reprocess_by_resource_id(V, job_id)
        if job.status in ("DONE", "FAILED") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# meters, values, properties, calculations
# ---------------------------------------------------------------------------------------------


def test_meter_values_properties_and_meters(server: Live) -> None:
    made = setup_llm_meter(server)
    values = server.api(sv.MeterValuesApi)
    properties = server.api(sv.MeterPropertiesApi)
    meters = server.api(sv.MetersApi)
    assert made["tokens"].id and made["tokens"].reference == "tokens" and made["tokens"].status == "ACTIVE"
    assert made["latency"].status == "DRAFT"  # created as DRAFT unless told
    assert made["model"].enum_values == ["gpt-4o", "mini"]

    # get by id and by reference; lists; statuses[] filter
    assert values.get_meter_values_by_resource_id_or_reference(V, made["tokens"].id).reference == "tokens"
    assert values.get_meter_values_by_resource_id_or_reference(V, "latency_ms").id == made["latency"].id
    assert {v.reference for v in values.get_meter_values(V).data} == {"tokens", "latency_ms"}
    assert [v.reference for v in values.get_meter_values(V, statuses=["DRAFT"]).data] == ["latency_ms"]
    assert [p.reference for p in properties.get_meter_properties(V).data] == ["model"]

    meter = meters.get_meters_by_resource_id_or_reference(V, "llm_usage")
    assert meter.id == made["meter"].id
    assert [(v.reference, v.required) for v in meter.meter_values] == [("tokens", True), ("latency_ms", False)]
    assert [p.reference for p in meter.meter_properties] == ["model"]
    expanded = meters.get_meters_by_resource_id_or_reference(V, meter.id, expand=["meter_values"])
    assert expanded.meter_values[0].object.type == "NUMBER"
    assert [x.reference for x in meters.get_meters(V).data] == ["llm_usage"]

    # patch: status, enum values only added to on an ACTIVE ENUM property
    patched = values.update_meter_values_by_resource_id_or_reference(
        V, "latency_ms", meter_value_update_request=m.MeterValueUpdateRequest(status="ACTIVE", description="p50 latency"))
    assert (patched.status, patched.description) == ("ACTIVE", "p50 latency")
    grown = properties.update_meter_properties_by_resource_id_or_reference(
        V, "model", meter_property_update_request=m.MeterPropertyUpdateRequest(enum_values=["gpt-4o", "mini", "o3"]))
    assert grown.enum_values == ["gpt-4o", "mini", "o3"]
    with pytest.raises(errors.BadRequestException) as shrink:
        properties.update_meter_properties_by_resource_id_or_reference(
            V, "model", meter_property_update_request=m.MeterPropertyUpdateRequest(enum_values=["gpt-4o"]))
    assert shrink.value.data.code == "INVALID_OPERATION"

    # a duplicate reference is a 409 the SDK parses; a whitespace reference is refused (400)
    with pytest.raises(errors.ConflictException) as taken:
        create_value(values, m.MeterValueCreateRequest(reference="tokens", name="again", type="NUMBER"))
    assert taken.value.data.code == "RESOURCE_ALREADY_EXISTS" and taken.value.data.var_field == "reference"
    spaced = m.MeterValueCreateRequest.model_construct(reference="two words", name="x", type="NUMBER")
    with pytest.raises(errors.BadRequestException) as whitespace:
        create_value(values, spaced)
    assert (whitespace.value.data.code, whitespace.value.data.var_field) == ("INVALID_FIELD", "reference")
    with pytest.raises(errors.BadRequestException) as bad_type:
        create_value(values, m.MeterValueCreateRequest.model_construct(reference="x", name="x", type="TEXT"))
    assert (bad_type.value.data.code, bad_type.value.data.var_field) == ("INVALID_FIELD", "type")

    # unknown ids: 404 with the error envelope (the SDK does not parse 404 here: read exc.body)
    with pytest.raises(errors.NotFoundException) as unknown:
        meters.get_meters_by_resource_id_or_reference(V, "nope")
    assert body_of(unknown.value)["code"] == "RESOURCE_NOT_FOUND"
    assert set(body_of(unknown.value)) == {"type", "code", "field", "message"}

    # a value a meter uses cannot be deleted; a free one can (200 with the object)
    with pytest.raises(errors.BadRequestException) as used:
        values.delete_meter_values_by_resource_id_or_reference(V, "tokens")
    assert used.value.data.code == "INVALID_OPERATION"
    spare = create_value(values, m.MeterValueCreateRequest(reference="spare", name="Spare", type="AMOUNT"))
    gone = values.delete_meter_values_by_resource_id_or_reference(V, spare.id)
    assert gone.reference == "spare"
    with pytest.raises(errors.NotFoundException):
        values.get_meter_values_by_resource_id_or_reference(V, spare.id)
    # the meter-data-file: Solvimon's CSV upload template for this meter
    template = meters.get_meters_by_resource_id_or_reference_meter_data_file(V, "llm_usage")
    assert bytes(template).decode().startswith("customer_reference,pricing_plan_subscription_reference,reference,")


def test_each_calculation_becomes_a_catalog_meter(server: Live) -> None:
    made = setup_llm_meter(server)
    calculations = server.api(sv.MeterValueCalculationsApi)
    created = {}
    for reference, kind, value, prop in (("tokens_sum", "SUM", "tokens", None), ("tokens_max", "MAX", "tokens", None),
                                         ("tokens_min", "MIN", "tokens", None),
                                         ("latency_avg", "AVERAGE", made["latency"].id, None),
                                         ("models_used", "UNIQUE", None, "model")):
        created[reference] = create_calculation(
            calculations, reference=reference, calculation_type=kind, meter_id="llm_usage", meter_value_id=value,
            meter_property_id=prop)
        assert created[reference].calculation_type == kind
        assert created[reference].meter_id == made["meter"].id
    assert created["latency_avg"].meter_value_id == made["latency"].id
    assert created["models_used"].meter_property_id == made["model"].id
    # COUNT is not in the SDK's enum: sent anyway with model_construct, and never sent back as calculation_type
    count_request = m.MeterValueCalculationCreateRequest.model_construct(
        reference="calls", calculation_type="COUNT", meter_id=made["meter"].id)
    count = calculations.post_meter_value_calculations(V, meter_value_calculation_create_request=count_request)
    assert count.reference == "calls" and count.calculation_type is None

    meters = {meter["code"]: meter for meter in catalog_of(server)["meters"]}
    assert meters["tokens_sum"] == {"code": "tokens_sum", "name": None, "aggregation": "sum", "field": "tokens",
                                    "filters": {}, "source": "llm_usage"}
    assert (meters["latency_avg"]["aggregation"], meters["latency_avg"]["field"]) == ("average", "latency_ms")
    assert (meters["models_used"]["aggregation"], meters["models_used"]["field"]) == ("unique_count", "model")
    assert (meters["tokens_max"]["aggregation"], meters["tokens_min"]["aggregation"]) == ("max", "min")
    assert (meters["calls"]["aggregation"], meters["calls"]["field"]) == ("count", None)

    listed = calculations.get_meter_value_calculations(V, limit=100)
    assert {c.reference for c in listed.data} == {"tokens_sum", "tokens_max", "tokens_min", "latency_avg",
                                                  "models_used", "calls"}
    raw = calculations.get_meter_value_calculations_by_resource_id_with_http_info(V, count.id)
    assert json.loads(raw.raw_data)["ratecard_aggregation"] == "count"
    expanded = calculations.get_meter_value_calculations_by_resource_id(V, "tokens_sum", expand=["meter_id"])
    assert expanded.meter.reference == "llm_usage"
    # the SDK's wrapper keeps only `data`; the full envelope is on the wire
    page = json.loads(calculations.get_meter_value_calculations_with_http_info(V, limit=4, page=2).raw_data)
    assert (len(page["data"]), page["page"], page["total_number_of_pages"], page["links"]["next"]) == (2, 2, 2, None)

    # a type change follows into the catalog; a value outside the meter is refused
    changed = calculations.update_meter_value_calculations_by_resource_id(
        V, created["tokens_max"].id,
        meter_value_calculation_update_request=m.MeterValueCalculationUpdateRequest(calculation_type="AVERAGE"))
    assert changed.calculation_type == "AVERAGE"
    assert {x["code"]: x for x in catalog_of(server)["meters"]}["tokens_max"]["aggregation"] == "average"
    create_value(server.api(sv.MeterValuesApi), m.MeterValueCreateRequest(reference="loose", name="l", type="NUMBER"))
    with pytest.raises(errors.BadRequestException) as outside:
        create_calculation(
            calculations, reference="loose_sum", calculation_type="SUM", meter_id="llm_usage", meter_value_id="loose")
    assert (outside.value.data.code, outside.value.data.var_field) == ("INVALID_FIELD", "meter_value_id")
    with pytest.raises(errors.BadRequestException) as no_value:
        create_calculation(
            calculations, reference="no_value", calculation_type="SUM", meter_id="llm_usage")
    assert (no_value.value.data.code, no_value.value.data.var_field) == ("MISSING_FIELD", "meter_value_id")
    with pytest.raises(errors.ConflictException):
        create_calculation(
            calculations, reference="tokens_sum", calculation_type="SUM", meter_id="llm_usage", meter_value_id="tokens")
    # a meter a calculation reads cannot be deleted; deleting the calculation removes the catalog meter
    with pytest.raises(errors.BadRequestException):
        server.api(sv.MetersApi).delete_meters_by_resource_id_or_reference(V, "llm_usage")
    deleted = calculations.delete_meter_value_calculations_by_resource_id(V, created["tokens_min"].id)
    assert deleted.reference == "tokens_min"
    assert "tokens_min" not in {x["code"] for x in catalog_of(server)["meters"]}
    with pytest.raises(errors.NotFoundException):
        calculations.get_meter_value_calculations_by_resource_id(V, created["tokens_min"].id)


# ---------------------------------------------------------------------------------------------
# customers
# ---------------------------------------------------------------------------------------------


def test_customers_create_list_update_activate(server: Live) -> None:
    customers = server.api(sv.CustomersApi)
    acme = create_customer(customers, m.CustomerCreateRequest(
        type="ORGANIZATION", reference="acme", email="billing@acme.test", timezone="Europe/Berlin",
        organization=m.OrganizationCreateRequest(legal_name="Acme Inc",
                                                 registered_address=m.Address(country="DE"))))
    assert (acme.reference, acme.status, acme.type) == ("acme", "DRAFT", "ORGANIZATION")
    assert acme.organization.legal_name == "Acme Inc" and acme.organization.registered_address.country == "DE"
    # it is a catalog customer now (a new catalog version)
    # (a registered address of a country alone is not an invoice address: ratecard's needs lines and a city)
    assert catalog_of(server)["customers"] == [{"reference": "acme", "name": "Acme Inc", "email": "billing@acme.test",
                                                "country": "DE", "address": None, "tax_id": None, "peppol_id": None,
                                                "billing_entity": None, "currency": None, "tax_rate": None,
                                                "timezone": "Europe/Berlin", "stripe_customer_id": None}]
    assert customers.get_customers_by_resource_id_or_reference(V, acme.id).reference == "acme"
    assert customers.get_customers_by_resource_id_or_reference(V, "acme").id == acme.id
    jane = create_customer(customers, m.CustomerCreateRequest(
        type="INDIVIDUAL", reference="jane", status="ACTIVE",
        individual=m.IndividualCreateRequest(name=m.Name(first_name="Jane", last_name="Doe"))))
    assert jane.status == "ACTIVE" and jane.individual.name.last_name == "Doe"
    listed = customers.get_customers(V, limit=10, page=1)
    assert {c.reference for c in listed.data} == {"acme", "jane"} and listed.total_number_of_pages == 1
    assert [c.reference for c in customers.get_customers(V, reference="jane").data] == ["jane"]

    updated = customers.update_customers_by_resource_id_or_reference(
        V, "acme", customer_update_request=m.CustomerUpdateRequest(email="ap@acme.test"))
    assert updated.email == "ap@acme.test" and updated.status == "DRAFT"
    assert catalog_of(server)["customers"][0]["email"] == "ap@acme.test"
    activated = customers.post_customers_by_resource_id_or_reference_activate(V, acme.id)
    assert activated.status == "ACTIVE"
    assert customers.post_customers_by_resource_id_or_reference_activate(V, "acme").status == "ACTIVE"  # idempotent

    # only a DRAFT customer can be deleted
    with pytest.raises(errors.BadRequestException) as active:
        customers.delete_customers_by_resource_id_or_reference(V, "acme")
    assert active.value.data.code == "INVALID_OPERATION"
    temp = create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="temp"))
    assert customers.delete_customers_by_resource_id_or_reference(V, temp.id).reference == "temp"
    with pytest.raises(errors.NotFoundException) as gone:
        customers.get_customers_by_resource_id_or_reference(V, "temp")
    assert body_of(gone.value)["code"] == "RESOURCE_NOT_FOUND"
    assert "temp" not in {c["reference"] for c in catalog_of(server)["customers"]}

    # PUT upserts by reference (201 either way); archive and deprecate
    upserted = customers.update_customers(V, identifier_field="reference", customer_create_request=m.CustomerCreateRequest(
        type="ORGANIZATION", reference="jane", email="jane@doe.test"))
    assert (upserted.id, upserted.email, upserted.type) == (jane.id, "jane@doe.test", "ORGANIZATION")
    created = customers.update_customers(V, identifier_field="reference", customer_create_request=m.CustomerCreateRequest(
        type="INDIVIDUAL", reference="newco"))
    assert created.reference == "newco" and created.status == "DRAFT"
    assert customers.post_customers_by_resource_id_or_reference_deprecate(V, "newco").status == "DEPRECATED"
    assert customers.post_customers_by_resource_id_or_reference_archive(V, "newco").status == "ARCHIVED"
    with pytest.raises(errors.BadRequestException) as archived:
        customers.post_customers_by_resource_id_or_reference_activate(V, "newco")
    assert archived.value.data.code == "INVALID_OPERATION"

    # errors: an existing reference (409, which the SDK does not parse for customers), a bad e-mail
    with pytest.raises(errors.ConflictException) as taken:
        create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="acme"))
    assert taken.value.status == 409 and body_of(taken.value)["code"] == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(errors.BadRequestException) as email:
        create_customer(customers, m.CustomerCreateRequest.model_construct(type="INDIVIDUAL", reference="x1",
                                                                           email="not-an-email"))
    assert (email.value.data.code, email.value.data.var_field) == ("INVALID_FIELD", "email")
    with pytest.raises(errors.BadRequestException) as no_type:
        create_customer(customers, m.CustomerCreateRequest.model_construct(reference="x2"))
    assert (no_type.value.data.code, no_type.value.data.var_field) == ("MISSING_FIELD", "type")

    # Idempotency-Key: a retry replays the first answer; another body under the same key is a 409
    key = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = customers.post_customers_with_http_info(
        V, customer_create_request=m.CustomerCreateRequest(type="ORGANIZATION", reference="globex"), _headers=key)
    again = customers.post_customers_with_http_info(
        V, customer_create_request=m.CustomerCreateRequest(type="ORGANIZATION", reference="globex"), _headers=key)
    assert first.status_code == again.status_code == 201 and first.data.id == again.data.id
    assert {k.lower(): v for k, v in again.headers.items()}.get("idempotent-replayed") == "true"
    with pytest.raises(errors.ConflictException) as reused:
        create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="initech"), _headers=key)
    assert body_of(reused.value)["code"] == "IDEMPOTENCY_CHECK_FAILED"


# ---------------------------------------------------------------------------------------------
# ingest
# ---------------------------------------------------------------------------------------------


def test_ingest_stores_once_and_lists_duplicates_and_not_matched(server: Live) -> None:
    setup_llm_meter(server)
    ingest = server.api(sv.IngestApi)
    reference = ref("evt")
    first = send(ingest, event(reference, values={"tokens": "1200.50"}, properties={"model": "mini"}))
    assert first is not None and first.reference == reference and first.id == reference  # None = a wrong 2xx
    assert first.processed_details.type == "NOT_MATCHED"  # no customer acme: kept, never billed
    assert first.processed_details.not_matched.variant == "UNKNOWN_CUSTOMER"
    assert [(v.reference, v.number) for v in first.meter_values] == [("tokens", "1200.50")]  # exact, a string
    assert [(p.reference, p.value) for p in first.meter_properties] == [("model", "mini")]
    again = send(ingest, event(reference, values={"tokens": "9"}))
    assert again.processed_details.type == "DUPLICATE"
    assert again.processed_details.duplicate_of_meter_data_id == first.id
    assert again.id != first.id

    # listed: the event once, its duplicate separately
    both = ingest.get_ingest_meter_data(V, reference=reference)
    assert sorted(e.processed_details.type for e in both.data) == ["DUPLICATE", "NOT_MATCHED"]
    assert [e.reference for e in both.data if e.processed_details.type != "DUPLICATE"] == [reference]
    duplicates = ingest.get_ingest_meter_data(V, processed_details_type="DUPLICATE")
    assert [(e.reference, e.meter_values[0].number) for e in duplicates.data] == [(reference, "9")]
    not_matched = ingest.get_ingest_meter_data(V, processed_details_type="NOT_MATCHED")
    assert [e.reference for e in not_matched.data] == [reference]
    # by reference: the original; by the duplicate's id: the duplicate
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, reference).processed_details.type == "NOT_MATCHED"
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, again.id).processed_details.type == "DUPLICATE"

    # a batch: a repeated reference inside it is fine (stored once), answers in input order
    batch_refs = [ref("batch") for _ in range(3)]
    batch = send_many(ingest, [
        event(batch_refs[0], values={"tokens": "1"}), event(batch_refs[1], values={"tokens": "2"}),
        event(batch_refs[0], values={"tokens": "3"}), event(batch_refs[2], values={"tokens": "4"})])
    assert [e.reference for e in batch.meter_datas] == [batch_refs[0], batch_refs[1], batch_refs[0], batch_refs[2]]
    assert [e.processed_details.type for e in batch.meter_datas] == ["NOT_MATCHED", "NOT_MATCHED", "DUPLICATE",
                                                                    "NOT_MATCHED"]
    stored = ingest.get_ingest_meter_data(V, limit=100, processed_details_type="NOT_MATCHED")
    assert len(stored.data) == 4 and stored.total_number_of_pages == 1

    # all or nothing: one invalid event refuses the batch, naming its index; nothing is stored
    bad = [event(ref("ok"), values={"tokens": "1"}), event(ref("ok"), values={"tokens": "1"}),
           event(ref("bad"), values={"tokens": "twelve"})]
    with pytest.raises(errors.BadRequestException) as refused:
        send_many(ingest, bad)
    assert refused.value.data.code == "INVALID_FIELD"
    assert refused.value.data.var_field == "meter_datas.2.meter_values.0.number"
    future = event(ref("future"), when=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(errors.BadRequestException) as too_late:
        send_many(ingest, [bad[0], future])
    assert too_late.value.data.var_field == "meter_datas.1.timestamp"
    assert ingest.get_ingest_meter_data(V, limit=100).total_number_of_pages == 1
    assert len(ingest.get_ingest_meter_data(V, limit=100).data) == 6  # 4 events + 2 duplicates

    # references: 10..256 characters, no whitespace (server-side too); '/' works in paths
    short = m.MeterDataCreateRequest.model_construct(reference="evt-1", customer_reference="acme",
                                                     meter_reference="llm_usage")
    with pytest.raises(errors.BadRequestException) as too_short:
        send(ingest, short)
    assert (too_short.value.data.code, too_short.value.data.var_field) == ("INVALID_FIELD", "reference")
    spaced = m.MeterDataCreateRequest(reference="evt with space", customer_reference="acme", meter_reference="m")
    with pytest.raises(errors.BadRequestException) as whitespace:
        send(ingest, spaced)
    assert whitespace.value.data.var_field == "reference"
    slashed = f"tenant/a/{uuid.uuid4().hex[:8]}"
    send(ingest, event(slashed, values={"tokens": "5"}))
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, slashed).reference == slashed

    # soft delete, by path and by body; idempotent; listed with deleted=true
    deleted = ingest.post_ingest_meter_data_by_resource_id_or_reference_delete(V, slashed)
    assert deleted.deleted is True
    assert ingest.post_ingest_meter_data_by_resource_id_or_reference_delete(V, slashed).deleted is True
    by_body = ingest.post_ingest_meter_data_delete(
        V, meter_data_create_request=m.MeterDataCreateRequest(reference=batch_refs[1]))
    assert by_body.deleted is True and by_body.reference == batch_refs[1]
    assert {e.reference for e in ingest.get_ingest_meter_data(V, deleted=True).data} == {slashed, batch_refs[1]}
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, slashed).deleted is True
    # re-sending a deleted reference is a duplicate of it, never a revival
    assert send(ingest, event(slashed)).processed_details.type == "DUPLICATE"
    with pytest.raises(errors.NotFoundException) as unknown:
        ingest.get_ingest_meter_data_by_resource_id_or_reference(V, "never-sent-0001")
    assert body_of(unknown.value)["code"] == "RESOURCE_NOT_FOUND"
    # the /v1/events family is the same store
    assert ingest.get_events_by_resource_id_or_reference(V, reference).reference == reference
    aliased = ingest.post_events_ingest(V, meter_data_create_request=event(ref("alias"), values={"tokens": "1"}),
                                        meter_validation="DYNAMIC")
    assert aliased is not None and aliased.processed_details.type == "NOT_MATCHED"
    listed = ingest.post_events_ingest_batch(V, meter_datas_create_request=m.MeterDatasCreateRequest(
        meter_datas=[event(aliased.reference)]), meter_validation="DYNAMIC")
    assert listed.meter_datas[0].processed_details.type == "DUPLICATE"
    assert aliased.reference in {e.reference for e in ingest.get_events(V, limit=100).data}
    assert ingest.post_events_by_resource_id_or_reference_delete(V, aliased.reference).deleted is True


def test_meter_validation_static_and_dynamic(server: Live) -> None:
    ingest = server.api(sv.IngestApi)
    meters = server.api(sv.MetersApi)
    # DYNAMIC (the default): an unknown meter is stored NOT_MATCHED and created with its values/properties
    dynamic = send(ingest, event(ref("dyn"), meter="gpu", values={"util": "0.5"},
                                                     properties={"region": "eu"}))
    assert dynamic.processed_details.type == "NOT_MATCHED"
    gpu = meters.get_meters_by_resource_id_or_reference(V, "gpu")
    assert (gpu.status, [v.reference for v in gpu.meter_values], [p.reference for p in gpu.meter_properties]) == \
        ("ACTIVE", ["util"], ["region"])
    assert server.api(sv.MeterValuesApi).get_meter_values_by_resource_id_or_reference(V, "util").type == "NUMBER"
    assert dynamic.meter_id == gpu.id

    # STATIC: an unknown meter, value or property is refused (400 naming the field), nothing stored
    setup_llm_meter(server)
    for kwargs, field in (({"meter": "unknown_meter"}, "meter_reference"),
                          ({"values": {"tokens": "1", "bogus": "1"}}, "meter_values.1.reference"),
                          ({"values": {"tokens": "1"}, "properties": {"colour": "red"}}, "meter_properties.0.reference"),
                          ({"values": {"tokens": "1"}, "properties": {"model": "llama"}}, "meter_properties.0.value"),
                          ({"values": {"latency_ms": "1"}}, "meter_values")):
        with pytest.raises(errors.BadRequestException) as refused:
            send(ingest, event(ref("static"), **kwargs), meter_validation="STATIC")
        assert (refused.value.data.var_field, refused.value.data.code) == \
            (field, "MISSING_FIELD" if field == "meter_values" else "INVALID_FIELD"), kwargs
    accepted = send(ingest, event(ref("static"), values={"tokens": "7"},
                                                      properties={"model": "mini"}), meter_validation="STATIC")
    assert accepted.reference.startswith("static")
    assert len(ingest.get_ingest_meter_data(V, limit=100).data) == 2  # the refused ones left nothing
    with pytest.raises(errors.BadRequestException) as mode:
        send(ingest, event(ref("mode")), meter_validation="SOMETIMES")
    assert (mode.value.data.code, mode.value.data.var_field) == ("INVALID_FIELD", "meter_validation")
    with pytest.raises(errors.BadRequestException) as kind:
        ingest.get_ingest_meter_data(V, processed_details_type="LATE")
    assert kind.value.data.var_field == "processed_details_type"


# ---------------------------------------------------------------------------------------------
# end to end: a calculation bills; NOT_MATCHED events match after reprocess; late events
# ---------------------------------------------------------------------------------------------


def _billing_setup(server: Live, env: str = "live") -> None:
    _meter_and_calculations(server, env)
    _customer_plan_and_subscription(server, env)


def _meter_and_calculations(server: Live, env: str = "live") -> None:
    """Meter llm_usage with calculations tokens_sum (SUM) and latency_avg (AVERAGE)."""
    setup_llm_meter(server, env)
    calculations = server.api(sv.MeterValueCalculationsApi, env)
    for reference, kind, value in (("tokens_sum", "SUM", "tokens"), ("latency_avg", "AVERAGE", "latency_ms")):
        create_calculation(
            calculations, reference=reference, calculation_type=kind, meter_id="llm_usage", meter_value_id=value)


def _customer_plan_and_subscription(server: Live, env: str = "live") -> None:
    """Customer acme, and over plain HTTP a plan charging both calculations and acme's subscription."""
    customers = server.api(sv.CustomersApi, env)
    create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="acme",
                                                       organization=m.OrganizationCreateRequest(legal_name="Acme")))
    customers.post_customers_by_resource_id_or_reference_activate(V, "acme")
    document = catalog_of(server, env)
    document["plans"] = [{"code": "pro", "currency": "EUR", "charges": [
        {"code": "tokens", "meter": "tokens_sum", "model": "per_unit", "unit_amount": "0.002"},
        {"code": "latency", "meter": "latency_avg", "model": "per_unit", "unit_amount": "1"}]}]
    document["subscriptions"] = [{"reference": "acme-pro", "customer": "acme", "plan": "pro", "start": "2026-01-01"}]
    apply_catalog(server, document, env)


def test_calculations_bill_and_not_matched_events_match_after_reprocess(server: Live) -> None:
    ingest = server.api(sv.IngestApi)
    _meter_and_calculations(server)
    # events arrive before their customer and subscription exist: kept as NOT_MATCHED
    early = [event(ref("early"), values={"tokens": "1000", "latency_ms": "100"}),
             event(ref("early"), values={"tokens": "500.25", "latency_ms": "150"})]
    stored = send_many(ingest, early)
    assert {e.processed_details.type for e in stored.meter_datas} == {"NOT_MATCHED"}
    assert {e.processed_details.not_matched.variant for e in stored.meter_datas} == {"UNKNOWN_CUSTOMER"}
    _customer_plan_and_subscription(server)
    later = send(ingest, event(ref("later"), values={"tokens": "250", "latency_ms": "200"}))
    assert later.processed_details.type == "DEFAULT"
    send(ingest, event(later.reference, values={"tokens": "999999"}))  # a duplicate: never billed
    outside = event(ref("feb"), when=datetime(2026, 2, 3, tzinfo=UTC), values={"tokens": "1", "latency_ms": "1"})
    send(ingest, outside)

    reprocess = server.api(sv.ReprocessApi)
    job = reprocess.post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(type="NOT_MATCHED",
                                                               not_matched=m.ReprocessNotMatchedCreateRequest()))
    assert job.id and job.type == "NOT_MATCHED" and job.status in ("PENDING", "RUNNING", "DONE")
    done = wait_for_job(reprocess, job.id)
    assert (done.status, done.percentage) == ("DONE", 100)
    assert [j.id for j in reprocess.get_reprocess(V, type="NOT_MATCHED").data] == [job.id]
    assert ingest.get_ingest_meter_data(V, processed_details_type="NOT_MATCHED").data == []
    assert all(ingest.get_ingest_meter_data_by_resource_id_or_reference(V, e.reference).processed_details.type
               == "DEFAULT" for e in early)

    run = server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    invoices = server.api(sv.InvoicesApi)
    listed = invoices.get_invoices(V, customer_id="acme", include_lines=True)
    assert len(listed.data) == 1
    invoice = listed.data[0]
    assert (invoice.status, invoice.customer_reference, invoice.billing_currency) == ("DRAFT", "acme", "EUR")
    lines = {line.meter_value.reference: line for line in invoice.periods[0].groups[0].lines}
    # tokens: 1000 + 500.25 + 250 = 1750.25 × 0.002 = 3.5005 -> 3.50; the duplicate is not counted
    assert (lines["tokens"].meter_value.number, lines["tokens"].amount_excluding_tax.quantity) == ("1750.25", "3.50")
    # latency: the AVERAGE of 100, 150, 200 = 150 × 1 = 150.00 (the February event is not in January)
    assert (lines["latency"].meter_value.number, lines["latency"].amount_excluding_tax.quantity) == ("150", "150.00")
    assert invoice.invoice_amount_including_tax.quantity == "153.50"
    assert invoice.periods[0].start_at == "2026-01-01T00:00:00Z" and invoice.billing_period.type == "MONTH"
    single = invoices.get_invoices_by_resource_id(V, invoice.id)
    assert single.tax_summary.total_amount.quantity == "153.50" and single.periods[0].groups[0].lines
    assert invoices.get_invoices(V, statuses=["FINAL"]).data == []
    assert invoices.get_invoices(V).data[0].periods is None  # lines only when asked for
    with pytest.raises(errors.NotFoundException):
        invoices.get_invoices_by_resource_id(V, "inv_999999")

    # a late event: its period's invoice is final; stored and flagged, the invoice never changes
    store = open_store(server.db_url)
    draft = [i for i in list_invoices(store, "live") if i.issue_date == "2026-02-01"][0]
    change_status(store, draft.id, "final", 1, "RC", "live")
    late_ref = ref("late")
    response = ingest.post_ingest_meter_data_with_http_info(
        V, meter_data_create_request=event(late_ref, values={"tokens": "100000"}))
    assert response.status_code == 201 and json.loads(response.raw_data)["late"] is True
    assert response.data.processed_details.type == "DEFAULT"  # no LATE type in the SDK: the extension field says it
    assert server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    final = invoices.get_invoices_by_resource_id(V, invoice.id)
    assert final.status == "FINAL" and final.invoice_amount_including_tax.quantity == "153.50"
    store.dispose()


def test_reprocess_invoice_and_customer_jobs(server: Live) -> None:
    _billing_setup(server)
    ingest = server.api(sv.IngestApi)
    send(ingest, event(ref("e"), values={"tokens": "100", "latency_ms": "10"}))
    assert server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    invoice = server.api(sv.InvoicesApi).get_invoices(V).data[0]
    ghost = send(ingest, event(ref("ghost"), customer="globex", values={"tokens": "5"}))
    assert ghost.processed_details.not_matched.variant == "UNKNOWN_CUSTOMER"
    reprocess = server.api(sv.ReprocessApi)
    by_customer = reprocess.post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(
        type="CUSTOMER", customer=m.ReprocessCustomerCreateRequest(customer_id="acme")))
    assert wait_for_job(reprocess, by_customer.id).status == "DONE"
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, ghost.reference).processed_details.type \
        == "NOT_MATCHED"  # another customer's event was not touched
    refresh = reprocess.post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(
        type="INVOICE", invoice=m.ReprocessInvoiceCreateRequest(invoice_id=invoice.id)))
    assert wait_for_job(reprocess, refresh.id).status == "DONE"
    assert len(reprocess.get_reprocess(V, limit=10).data) == 2
    with pytest.raises(errors.BadRequestException) as no_customer:
        reprocess.post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(type="CUSTOMER"))
    assert (no_customer.value.status, body_of(no_customer.value)["field"]) == (400, "customer.customer_id")
    with pytest.raises(errors.NotFoundException) as unknown:
        reprocess.get_reprocess_by_resource_id(V, "rep_nope")
    assert body_of(unknown.value)["code"] == "RESOURCE_NOT_FOUND"


# ---------------------------------------------------------------------------------------------
# keys and environments
# ---------------------------------------------------------------------------------------------


def test_a_key_only_ever_sees_its_own_environment(server: Live) -> None:
    _billing_setup(server, "live")
    live_ingest, sandbox_ingest = server.api(sv.IngestApi, "live"), server.api(sv.IngestApi, "sandbox")
    shared = ref("shared")
    assert send(live_ingest, event(shared, values={"tokens": "1"})).processed_details.type == \
        "DEFAULT"
    # the same reference in the sandbox is another event, not a duplicate; and it knows no customer acme
    sandbox_event = send(sandbox_ingest, event(shared, values={"tokens": "1"}))
    assert sandbox_event.processed_details.type == "NOT_MATCHED"
    assert [e.reference for e in sandbox_ingest.get_ingest_meter_data(V).data] == [shared]
    assert server.api(sv.MetersApi, "sandbox").get_meters(V).data == [
        server.api(sv.MetersApi, "sandbox").get_meters_by_resource_id_or_reference(V, "llm_usage")]  # made DYNAMIC
    live_customer = server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference(V, "acme")
    for call in (lambda: server.api(sv.CustomersApi, "sandbox").get_customers_by_resource_id_or_reference(V, "acme"),
                 lambda: server.api(sv.CustomersApi, "sandbox").get_customers_by_resource_id_or_reference(
                     V, live_customer.id),
                 lambda: server.api(sv.MeterValueCalculationsApi, "sandbox")
                 .get_meter_value_calculations_by_resource_id(V, "tokens_sum")):
        with pytest.raises(errors.NotFoundException):
            call()
    assert server.api(sv.CustomersApi, "sandbox").get_customers(V).data == []
    server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert server.api(sv.InvoicesApi, "sandbox").get_invoices(V).data == []
    assert len(server.api(sv.InvoicesApi, "live").get_invoices(V).data) == 1

    # a wrong key: 401 UNAUTHORISED, parsed by the SDK; the request id is on every answer
    with pytest.raises(errors.UnauthorizedException) as wrong:
        sv.IngestApi(server.client(key="rc_live_nope_nope")).get_ingest_meter_data(V)
    assert wrong.value.data.code == "UNAUTHORISED"
    raw = live_ingest.get_ingest_meter_data_with_http_info(V, limit=10)
    assert raw.status_code == 200 and {k.lower(): v for k, v in raw.headers.items()}.get("x-request-id")
    # lists: Solvimon's envelope and limits
    assert (raw.data.links.current, raw.data.links.previous) == ("/v1/ingest/meter-data?page=1&limit=10", None)
    with pytest.raises(errors.BadRequestException) as too_many:
        live_ingest.get_ingest_meter_data(V, limit=1000)
    assert (too_many.value.data.code, too_many.value.data.var_field) == ("INVALID_FIELD", "limit")


def test_numbers_stay_exact_decimals(server: Live) -> None:
    setup_llm_meter(server)
    ingest = server.api(sv.IngestApi)
    values = ["0.1", "0.2", "12345678901234567890.123456789", "-0.000001"]
    batch = send_many(ingest, [event(ref("n"), values={"tokens": value}) for value in values])
    assert [e.meter_values[0].number for e in batch.meter_datas] == values
    listed = ingest.get_ingest_meter_data(V, limit=10)
    assert sorted(e.meter_values[0].number for e in listed.data) == sorted(values)
    with localcontext() as context:
        context.prec = 60
        assert sum(Decimal(e.meter_values[0].number) for e in listed.data) == Decimal("12345678901234567890.423455789")


def test_two_workers_share_jobs_and_lose_no_change(db_url: str, tmp_path: Path) -> None:
    """`ratecard serve --workers 2`: customers created concurrently all land in the catalog (each
    change is made under the environment's lock from the latest version), and a reprocess job
    started on one worker is read (over fresh connections, so by either worker) with its
    progress until DONE, because jobs live in the database."""
    store = open_store(db_url)
    _, key = create_key(store, "live", 0, "workers")
    store.dispose()
    with Server(db_url, tmp_path / "server.log", workers=2) as running:
        live = Live(running.port, key, key, db_url)
        references = [f"customer-{index:02d}" for index in range(24)]

        def create(reference: str) -> str:
            request = m.CustomerCreateRequest(type="ORGANIZATION", reference=reference)
            return create_customer(live.api(sv.CustomersApi), request).reference  # a new connection each

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert sorted(pool.map(create, references)) == references
        assert sorted(c["reference"] for c in catalog_of(live)["customers"]) == references
        assert len(live.api(sv.CustomersApi).get_customers(V, limit=100).data) == 24

        send_many(live.api(sv.IngestApi), [event(ref("w"), customer="nobody", values={"tokens": "1"})
                                           for _ in range(30)])
        job = live.api(sv.ReprocessApi).post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(
            type="NOT_MATCHED", not_matched=m.ReprocessNotMatchedCreateRequest(customer_id="nobody")))
        statuses = []
        for _ in range(40):
            seen = live.api(sv.ReprocessApi).get_reprocess_by_resource_id(V, job.id)  # a new connection each time
            assert seen.id == job.id and 0 <= seen.percentage <= 100
            statuses.append(seen.status)
        done = wait_for_job(live.api(sv.ReprocessApi), job.id)
        assert (done.status, done.percentage) == ("DONE", 100), running.log()
        raw = json.loads(live.api(sv.ReprocessApi).get_reprocess_by_resource_id_with_http_info(V, job.id).raw_data)
        assert raw["ratecard_result"] == {"checked": 30, "matched": 0, "still_unmatched": {"unknown_customer": 30}}
        assert set(statuses) <= {"PENDING", "RUNNING", "DONE"}
