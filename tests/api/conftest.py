"""An API client per test on a fresh database (SQLite and PostgreSQL), with a key per environment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from ratecard.api.app import create_app
from ratecard.store import open_store
from ratecard.store.keys import create_key

from ..integration.scenario import CATALOG
from ..migrated import at_head


@dataclass
class Api:
    client: TestClient
    live: str
    sandbox: str
    url: str

    def headers(self, env: str = "live", **extra: str) -> dict[str, str]:
        return {"X-API-KEY": self.live if env == "live" else self.sandbox, **extra}

    def post(self, path: str, env: str = "live", headers: dict | None = None, **kwargs):
        return self.client.post(path, headers={**self.headers(env), **(headers or {})}, **kwargs)

    def get(self, path: str, env: str = "live", **kwargs):
        return self.client.get(path, headers=self.headers(env), **kwargs)

    def apply_catalog(self, text: str = CATALOG, env: str = "live") -> dict:
        response = self.post("/v1/catalog", env, content=text.encode(), headers={"content-type": "application/yaml"})
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    store = open_store(at_head(db_url))
    _, live = create_key(store, "live", 0, "test")
    _, sandbox = create_key(store, "sandbox", 0, "test")
    store.dispose()
    with TestClient(create_app(db_url), raise_server_exceptions=False) as client:
        yield Api(client, live, sandbox, db_url)
