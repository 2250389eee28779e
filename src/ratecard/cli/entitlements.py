"""`ratecard entitlements override|clear|overrides`: a customer's own value of a feature, in place of
what its plans grant (services.entitlement_overrides); the Solvimon API shows it with `override`."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import out, say

app = typer.Typer(help="Per-customer entitlement overrides (a feature's value for one customer).",
                  no_args_is_help=True)


@app.command("override")
def override(
    customer: Annotated[str, typer.Argument(help="The customer's reference.")],
    feature: Annotated[str, typer.Argument(help="The feature's code.")],
    value: Annotated[str, typer.Argument(help="A number, true/false for a switch, enum values separated by commas.")],
    db: DbOption = None,
) -> None:
    """Give CUSTOMER this VALUE of FEATURE instead of its plans' (replaces an earlier override)."""
    from ..services import entitlement_overrides as overrides
    from ..services.catalog import optional_catalog
    from ..services.errors import NotFound

    with store_for(db) as store:
        _, catalog = optional_catalog(store, ENVIRONMENT)
        document = catalog.document if catalog is not None else None
        found = next((f for f in (document.features if document is not None else []) if f.code == feature), None)
        if found is None:
            raise NotFound(f"feature {feature!r} does not exist")
        overrides.set_override(store, ENVIRONMENT, document, customer, feature, overrides.parse_value(found, value),
                               now())
    say(out, f"{customer}: {feature} overridden")


@app.command("clear")
def clear(
    customer: Annotated[str, typer.Argument(help="The customer's reference.")],
    feature: Annotated[str, typer.Argument(help="The feature's code.")],
    db: DbOption = None,
) -> None:
    """Remove CUSTOMER's override of FEATURE: its plans' value applies again. Exit 1 when there was none."""
    from ..services import entitlement_overrides as overrides

    with store_for(db) as store:
        removed = overrides.clear_override(store, ENVIRONMENT, customer, feature, now())
    say(out, f"{customer}: {feature} {'cleared' if removed else 'had no override'}")
    raise typer.Exit(0 if removed else 1)


@app.command("overrides")
def list_overrides(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every override (the usage limits set through the API are listed by GET /v1/usage-limits)."""
    from ..services import entitlement_overrides as overrides

    with store_for(db) as store:
        found = overrides.list_overrides(store, ENVIRONMENT, customer)
    if json_output:
        emit_json(found)
        return
    for item in found:
        say(out, f"{item['customer']}\t{item['feature']}\t{item['value']}")
