"""A legacy export's numbers meet the bound every event value meets: a line with an amount of
1e400 is refused with its line named, instead of being compared and printed with 400 digits."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.golive.legacy import LegacyFileError, load_mapping, read_legacy


def _read(folder: Path, amount: str, quantity: str = "1"):  # noqa: ANN202
    path = folder / "legacy.csv"
    path.write_text("customer,code,service_start,service_end,quantity,amount\n"
                    f"acme,calls,2026-10-01,2026-11-01,{quantity},{amount}\n", encoding="utf-8")
    return read_legacy(path, load_mapping(None))


@pytest.mark.parametrize(("amount", "quantity"), [("1e400", "1"), ("10", "-1e25"), ("1" * 40, "1")])
def test_a_number_past_the_bound_is_refused_with_its_line(tmp_path: Path, amount: str, quantity: str) -> None:
    with pytest.raises(LegacyFileError, match=r"line 2.*out of range"):
        _read(tmp_path, amount, quantity)


def test_numbers_inside_the_bound_are_read_exactly(tmp_path: Path) -> None:
    [line] = _read(tmp_path, "99999999999999999999.99", "0.0000000000000000001")
    assert line.amount == Decimal("99999999999999999999.99")
    assert line.quantity == Decimal("0.0000000000000000001")


@settings(max_examples=50, deadline=None)
@given(st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=2, allow_nan=False))
def test_any_amount_of_an_export_within_the_bound_is_kept_as_written(tmp_path_factory, amount: Decimal) -> None:
    [line] = _read(tmp_path_factory.mktemp("legacy"), str(amount))
    assert line.amount == amount
