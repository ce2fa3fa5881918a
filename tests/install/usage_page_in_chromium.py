"""
Open the "ZenDRIVE usage" page of a running Airflow UI as a user does, in headless Debian Chromium driven by
Playwright (no browser download), and report what it shows; ``tests/install/check_install.py`` compares that
with the warehouse table. Not a pytest module; run with the development venv's Python (which has Playwright).

1. Anonymous (a fresh browser context, no session) and forged (``_token=forged``) requests of the page and of
   its data endpoint: their status codes.
2. Sign in with the auth manager's login form, click "ZenDRIVE usage" in the navigation, and read the page in
   its iframe: per service the cells of the month table, each chart's bars (day and rendered height in CSS px),
   the empty-state text, the revisions' text, and whether any script ran. Then the same after choosing each
   ``VIEWS`` entry (``{"month", "service"}``) in the page's own form.
3. Admin > Plugins lists the plugin; the plugin import errors Airflow reports (``/api/v2/plugins/importErrors``).
4. With ``SCREENSHOT`` given, a PNG of the UI showing the page as it opens.

Prints one JSON object. Usage:
``python usage_page_in_chromium.py BASE_URL USERNAME PASSWORD VIEWS_JSON [SCREENSHOT]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared sign-in
from airflow_ui import CHROMIUM, FLAGS, TIMEOUT_MS, sign_in

PAGE = "/zendrive/usage"
READ_PAGE = """() => ({
  rows: [...document.querySelectorAll('tr[data-service]')].map(tr => ({
    service: Number(tr.dataset.service), cells: [...tr.cells].map(cell => cell.innerText.trim())})),
  bars: Object.fromEntries([...document.querySelectorAll('svg[data-chart]')].map(svg => [svg.dataset.chart,
    [...svg.querySelectorAll('rect[data-day]')].map(r => [r.dataset.day, r.getBoundingClientRect().height])])),
  empty: document.querySelector('[data-empty]')?.innerText ?? null,
  last_pull: document.querySelector('[data-last-pull]')?.innerText ?? null,
  revisions: document.querySelector('[data-revisions]')?.innerText ?? '',
  script_ran: window.__zendrive_pwned === 1,
})"""


def statuses(browser: Any, base_url: str, cookies: list[dict[str, str]]) -> dict[str, int]:
    """The page's and the data endpoint's status codes, each from a fresh context holding only ``cookies``."""
    found = {}
    for name, path in (("page", PAGE), ("data", PAGE + "/data")):
        context = browser.new_context()
        try:
            if cookies:
                context.add_cookies(cookies)
            found[name] = context.request.get(base_url + path, max_redirects=0).status
        finally:
            context.close()
    return found


def read_view(frame: Any) -> dict[str, Any]:
    """What the page in ``frame`` shows."""
    frame.wait_for_selector("h1")
    view: dict[str, Any] = frame.evaluate(READ_PAGE)
    view["url"] = frame.url
    return view


def main() -> int:
    """Run the steps; print one JSON object."""
    from playwright.sync_api import sync_playwright

    base_url, username, password = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    views, screenshot = json.loads(sys.argv[4]), (sys.argv[5] if len(sys.argv) > 5 else "")
    host = base_url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    result: dict[str, Any] = {
        "anonymous": {},
        "forged": {},
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            result["anonymous"] = statuses(browser, base_url, [])
            result["forged"] = statuses(
                browser, base_url, [{"name": "_token", "value": "forged", "domain": host, "path": "/"}]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.set_default_timeout(TIMEOUT_MS)
            sign_in(page, base_url, username, password)
            link = page.get_by_role("link", name="ZenDRIVE usage").first
            result["nav_href"] = link.get_attribute("href")
            link.click()
            page.wait_for_url("**/plugin/zendrive_usage")
            result["ui_url"] = page.url
            iframe = page.locator("iframe").first
            result["iframe_src"] = iframe.get_attribute("src")
            frame: Any = iframe.element_handle().content_frame()
            result["views"] = [read_view(frame)]
            if screenshot:  # the page as it opens: this month, every service
                page.screenshot(path=screenshot)
            for choice in views:
                frame.select_option('select[name="month"]', choice["month"])
                frame.select_option('select[name="service"]', choice["service"])
                with frame.expect_navigation():
                    frame.click('button[type="submit"]')
                result["views"].append(read_view(frame))
            data = page.request.get(base_url + PAGE + "/data")
            result["signed_in_data"] = {
                "status": data.status,
                "body": data.json() if data.ok else data.text(),
            }
            errors = page.request.get(base_url + "/api/v2/plugins/importErrors")
            result["plugin_import_errors"] = errors.json() if errors.ok else {"status": errors.status}
            page.get_by_role("button", name="Admin").click()
            page.locator('a[href="/plugins"]').first.click()
            row = page.locator("tr", has_text="zendrive").first
            row.wait_for()
            result["plugins_page"] = row.inner_text()
        finally:
            browser.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
