"""POST /v1/events decodes a JSON array in ratecard's shape in one call; every body reads as it
reads element by element (kept here as the reference): the same events, the same per-event
rejections, the same error answer (status, code, message, field) for a body refused whole."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ratecard.api.errors import ApiError
from ratecard.api.routes import events as route
from ratecard.services.events import decode_event
from ratecard.textfile import utf8_error_offset


def _element_by_element(body: bytes) -> list[Any]:
    """parse_events as it read before the one-call decode."""
    import msgspec

    stripped = body.lstrip()
    if not stripped:
        raise ApiError(400, "MISSING_FIELD", "the body holds no events; send a JSON array or NDJSON", "body")
    if stripped.startswith(b"["):
        try:
            elements = route._raw_list.decode(stripped)
        except (msgspec.DecodeError, UnicodeDecodeError):
            if utf8_error_offset(stripped) is not None:
                raise ApiError(400, "INVALID_FIELD", "the body is not UTF-8 text", "body") from None
            raise ApiError(400, "INVALID_FIELD",
                           f"the body is not a valid JSON array{route._where_json_breaks(stripped)}", "body") from None
        except RecursionError:
            raise ApiError(400, "INVALID_FIELD", "the body's JSON is nested too deeply", "body") from None
        route._check_count(len(elements))
        return [decode_event(index, bytes(raw)) for index, raw in enumerate(elements, start=1)]
    lines = [line for line in body.split(b"\n") if line.strip()]
    route._check_count(len(lines))
    return [decode_event(index, line) for index, line in enumerate(lines, start=1)]


def _outcome(parse: Any, body: bytes) -> Any:
    try:
        return ("read", parse(body))
    except ApiError as error:
        return ("refused", error.status, error.code, error.message, error.field, error.kind)


EVENT = '{"id":"e1","customer":"acme","meter":"calls","timestamp":"2026-03-01T00:00:00Z","properties":{"n":1}}'
PIECES = st.sampled_from([
    EVENT, '{"id":"e1","id":"e2","customer":"acme","meter":"calls","timestamp":"t"}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","extra":[1,{"x":null}],"line":9}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","line":"nine"}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":{"n":1e400,"m":-0,"k":1E-7}}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":{"n":18446744073709551617}}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":{"n":-99999999999999999999999}}',
    '{"id":"e\\u0000","customer":"acme\\u0000","meter":"calls","timestamp":"t"}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":null}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":[1]}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","subscription":{"a":1}}',
    '{"reference":"r1","customer_reference":"acme","meter_reference":"calls","timestamp":"t",'
    '"meter_values":[{"reference":"n","number":2}]}',
    '{"customer":"acme","meter":"calls","timestamp":"t"}', '{"id":null,"customer":"acme","meter":"m","timestamp":"t"}',
    '[]', 'null', '1', '"x"', 'true', '{}', '{"id":1,"customer":2,"meter":3,"timestamp":4}',
    '{"id":"e1","customer":"acme","meter":"calls","timestamp":"t","properties":' + '[' * 300 + ']' * 300 + '}',
    '[' * 2000 + ']' * 2000, '{"id":"e1",}', 'NaN', '{"id":"e1","customer":"acme","meter":"calls","timestamp":Infinity}',
    '\u00e9', '"\\ud800"', '{"id":"\\ud83d\\ude00","customer":"a","meter":"m","timestamp":"t"}',
])
BODIES = st.one_of(
    st.lists(PIECES, max_size=6).map(lambda items: ("[" + ",".join(items) + "]").encode()),
    st.lists(PIECES, max_size=6).map(lambda items: ("\n".join(items)).encode()),
    st.tuples(st.lists(PIECES, min_size=1, max_size=4), st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80",
                                                                         b" ", b"\t\r\n", b"]", b",", b"\xef\xbb\xbf"]),
              st.integers(0, 200)).map(lambda t: _spliced(("[" + ",".join(t[0]) + "]").encode(), t[1], t[2])),
    st.binary(max_size=60).map(lambda b: b"[" + b),
)


def _spliced(body: bytes, piece: bytes, at: int) -> bytes:
    at = at % (len(body) + 1)
    return body[:at] + piece + body[at:]


@settings(max_examples=3000, deadline=None)
@given(BODIES)
@example(b'[{"id":"e1","customer":"a","meter":"m","timestamp":"t"}, {"id":"e1","customer":"a","meter":"m",'
         b'"timestamp":"t","properties":{"x":"\xff"}}]')
@example(("[" + ",".join([EVENT] * (route.MAX_EVENTS + 1)) + "]").encode())
@example(b"  \n[" + json.dumps({"id": "e", "customer": "a", "meter": "m", "timestamp": "t", "properties":
                                 {"n": 10**30, "f": 1.5e300}}).encode() + b"]  \n")
@example(b'[{"id":"e","customer":"a","meter":"m","timestamp":"t","properties":{"n":' + b"9" * 5000 + b"}}]")
def test_a_body_reads_as_it_reads_element_by_element(body: bytes) -> None:
    assert _outcome(route.parse_events, body) == _outcome(_element_by_element, body)
