"""/v1/meter-values: the numeric inputs of events (NUMBER or AMOUNT)."""

from __future__ import annotations

from ...services.resources.model import VALUE
from .vocabulary import build_router

router = build_router(VALUE, "/v1/meter-values", "meter-values")
