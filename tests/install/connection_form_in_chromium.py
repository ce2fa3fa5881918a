"""
Create ZenDRIVE connections from the empty form of a running Airflow UI and press each one's Test button, in
headless Debian Chromium driven by Playwright (no browser download).

Run by ``tests/install/check_install.py`` with the development venv's Python (which has Playwright) against the
deployment it started; not a pytest module. Each case is ``{"conn_id", "access_key", "secret_key", "port"}``
(``port`` empty: the Port field is left untouched). Prints one JSON object per case:
``{"conn_id", "labels", "title", "message", "saved"}`` (the form's field labels; the toast's title and text
after Test; ``saved`` is the body the form posted when saving, with the password withheld). Each case signs in
first, as ``USERNAME`` with ``PASSWORD``.

Usage: ``python connection_form_in_chromium.py BASE_URL ENDPOINT_URL CASES_JSON USERNAME PASSWORD``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared sign-in
from airflow_ui import CHROMIUM, FLAGS, TIMEOUT_MS, sign_in


def run_case(page: Any, base_url: str, endpoint: str, case: dict[str, str]) -> dict[str, Any]:
    """Fill the empty form, save, press Test on the connection's row, read the toast."""
    saved: dict[str, Any] = {}

    def on_request(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/v2/connections"):
            body = json.loads(request.post_data or "{}")
            saved.update({key: value for key, value in body.items() if key != "password"})

    page.on("request", on_request)
    page.get_by_role("button", name="Admin").click()  # as a user goes (3.1 redirects a direct /connections)
    page.locator('a[href="/connections"]').first.click()
    page.get_by_role("button", name="Add Connection").click()
    page.get_by_label("Connection ID").fill(case["conn_id"])
    page.get_by_role("combobox").fill("ZenDRIVE")
    page.keyboard.press("Enter")
    page.locator('input[name="host"]').fill(endpoint)
    page.locator('input[name="login"]').fill(case["access_key"])
    page.locator('input[name="password"]').fill(case["secret_key"])
    if case["port"]:
        page.locator('input[name="port"]').fill(case["port"])
    labels = [text.strip(" *\n") for text in page.locator("label").all_inner_texts()]
    page.get_by_role("button", name="Save").click()
    row = page.locator("tr", has_text=case["conn_id"])
    row.get_by_role("button", name="Test Connection").click()
    toast = page.locator('[data-scope="toast"][data-part="root"]').filter(has_text="Test Connection").first
    toast.wait_for(timeout=TIMEOUT_MS)
    title = toast.locator('[data-part="title"]').inner_text()
    message = toast.locator('[data-part="description"]').all_inner_texts()
    page.remove_listener("request", on_request)
    return {
        "conn_id": case["conn_id"],
        "labels": labels,
        "title": title,
        "message": " ".join(message),
        "saved": saved,
    }


def main() -> int:
    """Run every case in one browser; print one JSON line per case."""
    from playwright.sync_api import sync_playwright

    base_url, endpoint, cases = sys.argv[1].rstrip("/"), sys.argv[2], json.loads(sys.argv[3])
    username, password = sys.argv[4], sys.argv[5]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for case in cases:
                page = browser.new_page(viewport={"width": 1300, "height": 1400})
                page.set_default_timeout(TIMEOUT_MS)
                try:
                    sign_in(page, base_url, username, password)
                    print(json.dumps(run_case(page, base_url, endpoint, case)), flush=True)
                finally:
                    page.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
