"""Coverage of Solvimon's API as a figure: every operation of the official SDK
(solvimon-python-sdk 0.0.4b0) called once against a live ratecard, on both stores.

The implemented set never shrinks: an operation listed in tests/api/solvimon_implemented.txt
that no longer reaches its handler fails, and so does one that reaches it without being listed
(add it with `python -m tests.tools.solvimon_coverage --write`). The table in
docs/solvimon-compat.md is what the probe finds."""

from __future__ import annotations

import re

from ratecard.api.routing import SUB_RESOURCES

from ..tools.solvimon_coverage import IMPLEMENTED, docs_table, operations, probe, read_list, table


def test_every_sdk_operation_is_probed_and_the_implemented_set_never_shrinks(db_url: str) -> None:
    status = probe(db_url)
    assert len(status) == len(operations()) == 486  # the SDK's 70 API classes
    implemented = {key for key, value in status.items() if value == IMPLEMENTED}
    listed = read_list()
    assert sorted(listed - implemented) == [], "listed operations that no longer reach their handler"
    assert sorted(implemented - listed) == [], ("operations that now reach a handler: add them with "
                                                "`python -m tests.tools.solvimon_coverage --write`")
    assert docs_table() == table(status), "docs/solvimon-compat.md is out of date: run the tool with --write"


def test_a_reference_route_never_swallows_a_solvimon_sub_resource() -> None:
    """Every literal segment the SDK puts right after a path parameter is a sub-resource the
    `{key:path}` routes leave alone (customers/acme/entitlements is not customer 'acme/entitlements')."""
    words = {word for operation in operations()
             for word in re.findall(r"\}/([^/{]+)", operation.path.replace("/v{version}", ""))}
    assert words - set(SUB_RESOURCES) == set()
