"""/v1/meter-properties: the dimensions of events (STRING, NUMBER or ENUM with enum_values)."""

from __future__ import annotations

from ...services.resources.model import PROPERTY
from .vocabulary import build_router

router = build_router(PROPERTY, "/v1/meter-properties", "meter-properties")
