"""A real `ratecard serve` on a temporary SQLite database, with console users and billing data,
and a headless Chromium driven by Playwright: the fixtures of the console's browser tests.

One server and one browser per test module (each started in a few seconds); every test gets a
fresh browser context (its own cookies), so tests do not see each other's sessions. The data is
made the way an operator would: a key with `ratecard keys create`, users with `ratecard users
create --password-stdin`, the catalog, events and an invoice run through the HTTP API.

Chromium is Debian's (/usr/bin/chromium, or RATECARD_CHROMIUM; `playwright install` is never run). Without it the
tests skip with the reason, unless RATECARD_REQUIRE_BROWSER=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..api.live_server import Server
from .harness import Cli

CHROMIUM = Path(os.environ.get("RATECARD_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("RATECARD_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
PASSWORD = "a long browser-test password"
ROLES = ("admin", "operator", "viewer")
LOCKED_USER = "forgetful@example.com"  # the lock-out test's own user: locking it harms no other test
HOSTILE_NAME = "<script>alert(1)</script>"
# the pages every signed-in admin must reach from the navigation
CONSOLE_PAGES = ("/console/", "/console/customers", "/console/invoices", "/console/events", "/console/golive",
                 "/console/alerts", "/console/users")
TIMEOUT_MS = 10_000

CATALOG = f"""
billing_entity: {{name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}}
meters:
  - {{code: api_calls, aggregation: count}}
plans:
  - code: pro
    currency: EUR
    charges:
      - {{code: base, model: flat, amount: "49.00", timing: advance}}
      - {{code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10"}}
customers:
  - {{reference: acme, name: Acme Inc, country: DE, currency: EUR, tax_rate: "19", timezone: UTC}}
  - {{reference: hostile, name: "{HOSTILE_NAME}", country: NL, currency: EUR, tax_rate: "21", timezone: UTC}}
  - {{reference: globex, name: Globex, country: NL, currency: EUR, tax_rate: "21", timezone: UTC}}
subscriptions:
  - {{reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}}
  - {{reference: hostile-pro, customer: hostile, plan: pro, start: 2026-01-01}}
  - {{reference: globex-pro, customer: globex, plan: pro, start: 2026-01-01}}
"""
EVENTS = [{"id": f"call-{customer}-{n}", "customer": customer, "meter": "api_calls",
           "timestamp": f"2026-01-{10 + n:02d}T10:00:00Z"}
          for customer in ("acme", "hostile", "globex") for n in range(3)]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401 - only whether it imports
    except ImportError as error:
        return f"playwright is not installed ({error}); `make dev` installs it"
    return None


def require_browser() -> None:
    reason = browser_missing()
    if reason is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"the browser tests are required (RATECARD_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(reason)


@dataclass
class Site:
    """The running server, its live API key and the drafts the data set up holds."""

    server: Server
    db_url: str
    live_key: str
    drafts: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the live environment's API."""
        headers = {"X-API-KEY": self.live_key, **kwargs.pop("headers", {})}
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def invoices(self) -> list[dict]:
        response = self.api("GET", "/v1/exports/invoices")
        assert response.status_code == 200, response.text
        return response.json()


def create_users(cli: Cli, users: dict[str, str]) -> None:
    """`ratecard users create EMAIL --role ROLE --password-stdin` for each (in this process through
    the command's entry point, as the e2e harness runs commands: no second of imports each)."""
    for email, role in users.items():
        cli.ok("users", "create", email, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")


def fill_with_data(site: Site) -> None:
    applied = site.api("POST", "/v1/catalog", content=CATALOG.encode(), headers={"content-type": "application/yaml"})
    assert applied.status_code == 201, applied.text
    stored = site.api("POST", "/v1/events", json=EVENTS)
    assert stored.status_code in (200, 201), stored.text
    run = site.api("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code in (200, 201), run.text
    site.drafts = sorted(invoice["number"] for invoice in site.invoices() if invoice["status"] == "draft")
    assert site.drafts, site.invoices()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_browser()  # no server is worth starting when the browser cannot run
    folder = tmp_path_factory.mktemp("console-browser")
    cli = Cli(folder, "console.db")
    live_key = cli.ok("keys", "create", "--env", "live", "--json").json()["key"]  # also migrates the database
    server = Server(cli.db, folder / "serve.log")
    try:
        # the server takes seconds to start (a process importing the API): the users are made meanwhile
        with ThreadPoolExecutor(1) as background:
            started = background.submit(server.start)
            try:
                create_users(cli, {**{f"{role}@example.com": role for role in ROLES}, LOCKED_USER: "viewer"})
            finally:
                started.result()
        built = Site(server, cli.db, live_key)
        fill_with_data(built)
        yield built
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """One page of a fresh browser context, with every console error, uncaught exception and
    dialog (alert, confirm) it met."""

    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path)
        assert response is not None, path
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.open("/console/login")
        self.submit_login(email, password)
        self.page.wait_for_url(re.compile(r".*/console/(\?.*)?$"))

    def submit_login(self, email: str, password: str) -> None:
        self.page.get_by_label("E-mail").fill(email)
        self.page.get_by_label("Password").fill(password)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()

    def navigation(self) -> list[str]:
        """The paths of the section links in the page's navigation, in order."""
        links = self.page.locator("nav[aria-label=sections] a")
        return [links.nth(i).get_attribute("href") for i in range(links.count())]


@pytest.fixture
def tab(chromium: Any, site: Site) -> Iterator[Tab]:
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    opened = Tab(page, site.base_url)
    page.on("console", lambda message: opened.errors.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(f"uncaught: {error}"))

    def dialog(shown: Any) -> None:
        opened.dialogs.append(f"{shown.type}: {shown.message}")
        shown.dismiss()

    page.on("dialog", dialog)
    try:
        yield opened
    finally:
        context.close()

