"""Screenshots of every console page on the demo data, for docs/dashboard.md.

Run after `make demo` (it needs Chromium at /usr/bin/chromium, or RATECARD_CHROMIUM):

    .venv/bin/python examples/console_screenshots.py --demo-db demo.db --out docs/dashboard

It works on a copy of the demo database (demo.db itself is never written): it adds this month's
usage so far (so the charts have something to draw), finalizes the first twenty drafts, serves the
copy on a free port, signs in as the demo admin, uploads examples/legacy.csv on the reconciliation
page as a person would, and writes one PNG per page (the visible part, 1280 x 900).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

EMAIL, PASSWORD = "demo@example.com", "demo-only-local-password"
# (file name, path or None for "follow the first link matching the selector", the selector)
PAGES = [
    ("overview", "/console/", None),
    ("customers", "/console/customers", None),
    ("customer", None, "table a[href^='/console/customers/']"),
    ("invoices", "/console/invoices", None),
    ("invoice", "/console/invoices?status=draft", "table a[href^='/console/invoices/']"),
    ("events", "/console/events?status=unmatched", None),
    ("golive-readiness", "/console/golive", None),
    ("golive-cohorts", "/console/golive/cohorts", None),
    ("golive-reconcile", "/console/golive/reconcile", None),
    ("golive-cutover", "/console/golive/cutover?date=2027-01-01", None),
    ("golive-backfills", "/console/golive/backfills", None),
    ("golive-rollback", "/console/golive/rollback", None),
    ("alerts", "/console/alerts", None),
    ("catalog", "/console/catalog", None),
    ("users", "/console/users", None),
    ("keys", "/console/keys", None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-db", type=Path, default=Path("demo.db"))
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"))
    parser.add_argument("--legacy", type=Path, default=Path("examples/legacy.csv"))
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    arguments.out.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix="ratecard-screenshots-"))
    shutil.copyfile(arguments.demo_db, workspace / "demo.db")
    database = f"sqlite:///{workspace / 'demo.db'}"
    environment = {key: value for key, value in os.environ.items() if key != "RATECARD_NOW"}
    ratecard = str(Path(sys.executable).with_name("ratecard"))
    _this_months_usage(ratecard, database, workspace, environment)
    drafts = [f"DRAFT-{n}" for n in range(1, 21)]
    subprocess.run([ratecard, "invoices", "finalize", *drafts, "--db", database], env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    port = _free_port()
    server = subprocess.Popen([ratecard, "serve", "--port", str(port), "--db", database], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/healthz")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("RATECARD_CHROMIUM", "/usr/bin/chromium"),
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/console/login")
            page.screenshot(path=str(arguments.out / "login.png"))
            page.fill("input[name=email]", EMAIL)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/console/")
            page.goto(base + "/console/golive/reconcile")
            page.set_input_files("input[type=file]", str(arguments.legacy))
            page.click("form[action$='/upload'] button[type=submit]")
            page.wait_for_load_state()
            previous = "/console/customers"
            for name, path, selector in PAGES:
                if path is not None:
                    page.goto(base + path)
                if selector is not None:
                    if path is None:
                        page.goto(base + previous)
                    page.locator(selector).first.click()
                    page.wait_for_load_state()
                previous = path or previous
                page.screenshot(path=str(arguments.out / f"{name}.png"))
                print(f"{name}: {page.url}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workspace, ignore_errors=True)
    return 0


def _this_months_usage(ratecard: str, database: str, workspace: Path, environment: dict[str, str]) -> None:
    """The demo's usage is October's; a month of events for the current month is generated and
    imported, so the overview's and the customer page's charts show today's period. Events after
    "now" are rejected as from the future, which the overview's chart shows too."""
    month = datetime.now(UTC).strftime("%Y-%m")
    events = workspace / "this-month.jsonl"
    subprocess.run([sys.executable, str(Path(__file__).with_name("generate_events.py")), "--catalog",
                    str(Path(__file__).with_name("catalog.yaml")), "--month", month, "--out", str(events),
                    "--events", "4000"], check=True)
    imported = subprocess.run([ratecard, "events", "import", str(events), "--db", database], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if imported.returncode not in (0, 1):  # 1: some rows rejected (those from the future)
        raise SystemExit(f"importing this month's events failed with exit code {imported.returncode}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url}")


if __name__ == "__main__":
    raise SystemExit(main())
