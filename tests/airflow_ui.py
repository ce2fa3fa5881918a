"""
Signing in to a running Airflow UI in headless Debian Chromium (Playwright, no browser download): shared by the
install check's browser scripts (``tests/install/*_in_chromium.py``), which put ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TIMEOUT_MS = 60_000


def sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    """Open the UI, which sends a visitor without a session to the auth manager's login form, and sign in there."""
    page.goto(base_url + "/")
    page.locator('input[name="username"]').fill(username)
    page.locator('input[name="password"]').fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")
    page.get_by_role("link", name="Dags").first.wait_for()
