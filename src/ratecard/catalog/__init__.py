"""The catalog file: load (YAML/JSON), validate every problem with its path, resolve to domain objects."""

from .load import CatalogFileError, load_document
from .model import Catalog, CustomerSpec, MeterSpec, PhaseSpec, SubscriptionSpec, build_catalog
from .validate import Problem, check_document

__all__ = [
    "Catalog",
    "CatalogFileError",
    "CustomerSpec",
    "MeterSpec",
    "Problem",
    "PhaseSpec",
    "SubscriptionSpec",
    "build_catalog",
    "check_document",
    "load_document",
]
