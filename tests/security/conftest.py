"""The security tests share the HTTP API tests' in-process client (`api`): one fixture, not a copy."""

from ..api.conftest import api  # noqa: F401 - re-exported as a fixture for tests/security
