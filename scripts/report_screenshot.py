"""
Screenshot the monthly HTML report for the docs: ``docs/_static/monthly-report.png``, and with ``--email`` the
emailed HTML as the strictest mail clients show it (every ``<svg>`` and ``<style>`` removed):
``docs/_static/monthly-report-email.png``.

Renders the report of the emulator's deterministic data (service 1234, April 2026 by default, the same numbers
every time) with :func:`~airflow_provider_zendrive._outputs.report_html.monthly_report_html`, opens it in
Debian's Chromium (headless, through Playwright; no browser download) at 1000 px wide and saves a full-page
PNG. Run it after changing the report's look, and commit the PNG::

    .venv/bin/python scripts/report_screenshot.py
    .venv/bin/python scripts/report_screenshot.py --failed --output /tmp/failed.png   # the failed look
    .venv/bin/python scripts/report_screenshot.py --email   # the email, as Gmail or Outlook show it

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) or ``--chromium PATH``, and the ``playwright``
package (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import calendar
import datetime
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_zendrive.reports import monthly_report_email, monthly_report_html
from airflow_provider_zendrive.testing._data import DEMO_SERVICE_ID, window_stats

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent
#: What headless Chromium needs on a machine without a display or outside network access.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH = 1000


def render(month: str, *, failed: bool, email: bool = False) -> str:
    """
    The report of the emulator's service 1234 for ``month``, reconciled (or, with ``failed``, not): the HTML
    file, or with ``email`` the emailed HTML.
    """
    year, number = map(int, month.split("-"))
    first = datetime.date(year, number, 1)
    last = first.replace(day=calendar.monthrange(year, number)[1])
    stats = window_stats(DEMO_SERVICE_ID, first, last)
    days = (last - first).days + 1
    problems = [
        f"the table zendrive_daily_usage has no row for 2 day(s) of the month ({first}, {last}); "
        "backfill zendrive_daily_billing for them",
        "the API summary differs from the sum of the daily rows in bytes_sent",
    ]
    reconciliation = problems if failed else []
    checked = "" if failed else f"{days} daily rows == API summary == warehouse table"
    if email:
        return monthly_report_email(stats, month=month, reconciliation=reconciliation, checked=checked).html
    return monthly_report_html(stats, month=month, reconciliation=reconciliation, checked=checked)


def screenshot(page: Page, html_path: Path, png_path: Path, *, strip: bool = False) -> None:
    """Open ``html_path`` in ``page`` and save a full-page PNG of it (``strip``: without SVG and styles)."""
    page.goto(html_path.as_uri(), wait_until="load")
    if strip:  # what Gmail and Outlook do with embedded SVG; the strictest clients drop <style> too
        page.evaluate("() => document.querySelectorAll('svg, style').forEach(element => element.remove())")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(png_path), full_page=True)


def open_chromium(playwright: Playwright, chromium: Path, profile: str) -> BrowserContext:
    """Headless Chromium ``WIDTH`` px wide, with a fresh profile in ``profile``."""
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(chromium),
        args=FLAGS,
        headless=True,
        viewport={"width": WIDTH, "height": 800},
        device_scale_factor=1,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, help="default docs/_static/monthly-report[-email].png")
    parser.add_argument("--email", action="store_true", help="the emailed HTML, SVG and styles removed")
    parser.add_argument("--month", default="2026-04", help="YYYY-MM (default 2026-04)")
    parser.add_argument("--failed", action="store_true", help="show a failed reconciliation")
    parser.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    parser.add_argument("--html", type=Path, help="also keep the HTML here")
    args = parser.parse_args(argv)
    if not args.chromium.is_file():
        parser.error(f"{args.chromium} not found: apt-get install chromium, or pass --chromium PATH")
    from playwright.sync_api import sync_playwright

    output = args.output or ROOT / "docs" / "_static" / f"monthly-report{'-email' if args.email else ''}.png"
    text = render(args.month, failed=args.failed, email=args.email)
    with (
        tempfile.TemporaryDirectory(prefix="zendrive-report-") as folder,
        sync_playwright() as playwright,
    ):
        html_path = args.html or Path(folder) / f"zendrive-usage-{args.month}.html"
        html_path.write_text(text, encoding="utf-8")
        context = open_chromium(playwright, args.chromium, str(Path(folder) / "profile"))
        try:
            screenshot(context.new_page(), html_path, output, strip=args.email)
        finally:
            context.close()
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
