"""Every section of the console answers a signed-in user; nobody else gets past the login page."""

from __future__ import annotations

import pytest

SECTIONS = ["/console/", "/console/customers", "/console/invoices", "/console/events", "/console/golive",
            "/console/alerts"]


@pytest.mark.parametrize("path", SECTIONS)
def test_each_section_loads_for_a_viewer_and_needs_a_login(console, path):
    answer = console.viewer.get(path)
    assert answer.status_code == 200, answer.text
    assert "viewer@example.com" in answer.text
    anonymous = console.anonymous().get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/console/login")
