"""
The monthly HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

The emulator's April 2026 (service 1234, four days without traffic) is rendered to a file, opened from disk
and measured: the page renders with no console error and no request beyond the file itself, and each chart's
bars, as laid out by the browser, are as tall as the numbers say (one scale per chart, within 1 px) and
carry the exact values.

Needs ``/usr/bin/chromium`` (``.ci/run`` installs Debian's ``chromium``) and the ``playwright`` package; no
browser is downloaded. Without them the tests skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import datetime
import importlib.util
import itertools
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_zendrive._client.models import UsageStats
from airflow_provider_zendrive._outputs.report_html import monthly_report_html
from airflow_provider_zendrive.testing._data import DEMO_SERVICE_ID, window_stats

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
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
FIRST, LAST = datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)
DAYS = [(FIRST + datetime.timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days + 1)]
TITLE = "ZenDRIVE usage, service 1234, April 2026"
CHECKED = "30 daily rows == API summary == warehouse table"

#: Each chart's bars and gridlines as the browser laid them out, in CSS pixels (getBBox: SVG user units).
MEASURE = """
svg => {
  const box = e => e.getBoundingClientRect();
  const bars = [...svg.querySelectorAll("rect.bar")].map(r => ({
    date: r.dataset.date, value: r.dataset.value, left: box(r).left, width: box(r).width,
    top: box(r).top, bottom: box(r).bottom, height: box(r).height, bboxHeight: r.getBBox().height,
  }));
  const ticks = [...svg.querySelectorAll("g.tick")].map(g => {
    const line = box(g.querySelector("line"));
    return {value: g.dataset.value, y: (line.top + line.bottom) / 2};
  });
  const frame = box(svg);
  return {bars, ticks, frame: {left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom}};
}
"""


def require_browser() -> None:
    """Skip without Chromium or Playwright, except in CI, where that is a failure."""
    reason = None
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)"
    elif importlib.util.find_spec("playwright") is None:
        reason = "the playwright package is missing (it is in the test extra: pip install -e '.[test]')"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile, 1000 px wide, for the module."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            viewport={"width": WIDTH, "height": 800},
            device_scale_factor=1,
        )
        try:
            yield context
        finally:
            context.close()


class Opened:
    """A report opened from disk, with what the page logged and fetched."""

    def __init__(self, page: Page, path: Path) -> None:
        self.page = page
        self.url = path.as_uri()
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: self.errors.append(f"request failed: {request.url}"))
        page.on("request", lambda request: self.requests.append(request.url))
        page.goto(self.url, wait_until="load")

    def _console(self, kind: str, text: str) -> None:
        if kind in ("error", "warning"):
            self.errors.append(f"console {kind}: {text}")

    def measure(self, field: str) -> dict[str, Any]:
        result: dict[str, Any] = self.page.locator(f'svg.chart[data-field="{field}"]').evaluate(MEASURE)
        return result


@pytest.fixture
def open_report(browser: BrowserContext, tmp_path: Path) -> Iterator[Any]:
    """``open_report(html_text)``: write it to a file and open it in a new tab."""
    pages: list[Page] = []

    def _open(text: str) -> Opened:
        path = tmp_path / "zendrive-usage-2026-04.html"
        path.write_text(text, encoding="utf-8")
        page = browser.new_page()
        pages.append(page)
        return Opened(page, path)

    yield _open
    for page in pages:
        page.close()


def april() -> UsageStats:
    return window_stats(DEMO_SERVICE_ID, FIRST, LAST)


def test_the_report_renders_offline_without_errors(open_report: Any, tmp_path: Path) -> None:
    report: Opened = open_report(monthly_report_html(april(), month="2026-04", checked=CHECKED))
    page = report.page
    assert page.title() == TITLE
    assert page.locator("h1").inner_text() == TITLE
    assert page.locator(".status.ok").inner_text().endswith(f"Reconciled: {CHECKED}")
    for selector in ("h1", ".status.ok", ".totals", 'svg[data-field="bytes_sent"]', "table"):
        assert page.locator(selector).first.is_visible(), selector
    assert page.locator('svg[data-field="total_requests"]').is_visible()
    assert report.errors == []
    assert report.requests == [report.url], "the page fetched something besides itself"
    # Not blank: the whole report laid out, at the width it was made for, nothing spilling sideways.
    size = page.evaluate(
        "() => ({width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,"
        " rows: document.querySelectorAll('tbody tr').length, text: document.body.innerText.length})"
    )
    assert size["width"] <= WIDTH
    assert size["height"] > 1500
    assert size["rows"] == 30
    assert size["text"] > 2000
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert png_size(shot) == (WIDTH, size["height"])


@pytest.mark.parametrize("field", ["bytes_sent", "total_requests"])
def test_rendered_bars_are_proportional_to_the_numbers(open_report: Any, field: str) -> None:
    stats = april()
    listed = {day["date"]: day[field] for day in stats["daily"]}  # type: ignore[literal-required]
    expected = [listed.get(day, 0) for day in DAYS]
    assert 0 in expected, "the month should have days without traffic"
    report: Opened = open_report(monthly_report_html(stats, month="2026-04", checked=CHECKED))
    chart = report.measure(field)
    bars, ticks, frame = chart["bars"], chart["ticks"], chart["frame"]

    # One bar per calendar day, in order, carrying the exact integers of the API's answer.
    assert [bar["date"] for bar in bars] == DAYS
    assert [int(bar["value"]) for bar in bars] == expected

    # One scale: each bar's rendered height is value * (px per unit), within 1 px; quiet days are flat.
    tallest = max(bars, key=lambda bar: int(bar["value"]))
    per_unit = tallest["height"] / int(tallest["value"])
    per_unit_svg = tallest["bboxHeight"] / int(tallest["value"])
    assert tallest["height"] >= 100, "the chart is too small to read"
    for bar, value in zip(bars, expected, strict=True):
        assert abs(bar["height"] - value * per_unit) <= 1, (bar["date"], bar["height"], value * per_unit)
        assert abs(bar["bboxHeight"] - value * per_unit_svg) <= 1, bar["date"]
        if value == 0:
            assert bar["height"] < 0.01, bar["date"]

    # On one baseline, left to right in date order, inside the chart, none overlapping.
    baseline = tallest["bottom"]
    assert all(abs(bar["bottom"] - baseline) <= 0.5 for bar in bars)
    for before, after in itertools.pairwise(bars):
        assert before["left"] + before["width"] < after["left"]
    assert frame["left"] <= bars[0]["left"]
    assert bars[-1]["left"] + bars[-1]["width"] <= frame["right"]
    assert frame["top"] <= tallest["top"]
    assert baseline <= frame["bottom"]

    # The axis reads true: each gridline sits where its value's bar would end.
    assert int(ticks[0]["value"]) == 0
    assert int(ticks[-1]["value"]) >= int(tallest["value"])
    for tick in ticks:
        assert abs(tick["y"] - (baseline - int(tick["value"]) * per_unit)) <= 1, tick


def test_a_failed_reconciliation_is_the_first_thing_seen(open_report: Any) -> None:
    problems = ["the table zendrive_daily_usage has no row for 2026-04-03", "bytes_sent <b>differs</b>"]
    report: Opened = open_report(monthly_report_html(april(), month="2026-04", reconciliation=problems))
    alert = report.page.get_by_role("alert")
    assert alert.is_visible()
    box = alert.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] < 800, "the failure is below the first screen"
    text = alert.inner_text()
    assert "Reconciliation failed: 2 problems" in text
    assert all(problem in text for problem in problems)  # shown as text, not as markup
    assert report.page.locator(".status.failed b").count() == 0
    assert report.page.title() == f"{TITLE} (reconciliation failed)"
    assert report.errors == []


def test_the_docs_screenshot_script(browser: BrowserContext, tmp_path: Path) -> None:
    """``scripts/report_screenshot.py`` (it writes docs/_static/monthly-report.png): its report and its
    screenshot, in this browser (a second Playwright cannot start in this process)."""
    spec = importlib.util.spec_from_file_location(
        "report_screenshot", ROOT / "scripts" / "report_screenshot.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.FLAGS == FLAGS
    assert script.WIDTH == WIDTH
    for failed, email in ((False, False), (True, False), (False, True)):
        page = browser.new_page()
        try:
            name = f"report-{failed}-{email}"
            html_path, png_path = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
            html_path.write_text(script.render("2026-04", failed=failed, email=email), encoding="utf-8")
            script.screenshot(page, html_path, png_path, strip=email)
            assert page.title() == TITLE + (" (reconciliation failed)" if failed else "")
            assert page.locator("svg, style").count() == (0 if email else 3)  # the email's shot: stripped
            height = page.evaluate("() => document.documentElement.scrollHeight")
        finally:
            page.close()
        assert png_size(png_path) == (WIDTH, height)
        assert height > (1200 if email else 1500)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_monthly_dags_report_shows_the_numbers_of_its_csv(
    browser: BrowserContext, airflow_runner: Any, zendrive_emulator: Any, tmp_path: Path
) -> None:
    """The page the example DAG wrote, in the browser: each bar is the CSV's number for its day."""
    import csv

    dags = ROOT / "example_dags" / "zendrive_monthly_report.py"
    env = {
        "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
        "ZENDRIVE_REPORT_BASE": str(tmp_path / "reports"),
        "ZENDRIVE_POKE_INTERVAL": "0.5",
    }
    result = airflow_runner.run(
        "zendrive_monthly_report", "2026-05-01", dags_folder=dags, env=env, conf={"check_warehouse": False}
    )
    assert result.state == "success", result.output[-3000:]
    with (tmp_path / "reports" / "zendrive-usage-2026-04.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["date"] for row in rows] == DAYS

    page = browser.new_page()
    try:
        report = Opened(page, tmp_path / "reports" / "zendrive-usage-2026-04.html")
        assert page.title() == TITLE
        assert report.errors == []
        for field in ("bytes_sent", "total_requests"):
            bars = report.measure(field)["bars"]
            values = [int(row[field]) for row in rows]
            assert [(bar["date"], int(bar["value"])) for bar in bars] == list(zip(DAYS, values, strict=True))
            tallest = max(bars, key=lambda bar: int(bar["value"]))
            per_unit = tallest["height"] / int(tallest["value"])
            for bar, value in zip(bars, values, strict=True):
                assert abs(bar["height"] - value * per_unit) <= 1, (field, bar["date"])
    finally:
        page.close()


#: Each day's row of a mailed chart, as laid out: its date, value and bar width (0 without a bar).
MEASURE_MAIL = """
rows => rows.map(row => {
  const bar = row.querySelector("td.bar");
  return {date: row.dataset.date, value: row.dataset.value, width: bar ? bar.getBoundingClientRect().width : 0};
})
"""
#: What the strictest mail clients drop or block: layout they do not support, and anything remote.
UNSUPPORTED = re.compile(
    r"<svg|<script|<link|@import|position\s*:|display\s*:\s*(?:inline-)?(?:flex|grid)|float\s*:"
    r"|(?:src|href|background)\s*=\s*[\"']?(?:https?:)?//|url\(",
    re.IGNORECASE,
)


def test_the_monthly_dags_email_shows_its_charts_without_svg_or_style(
    browser: BrowserContext, airflow_runner: Any, zendrive_emulator: Any, tmp_path: Path
) -> None:
    """
    The message the SMTP server received from a real run: text and HTML alternatives, every ``cid:``
    resolving, no SVG, under Gmail's 100 KB; rendered with every ``<svg>`` and ``<style>`` removed (what the
    strictest clients do), one bar per day, each ``value x one scale`` wide within 1 px, for both charts.
    """
    import csv

    from smtp_server import smtp_server

    dags = ROOT / "example_dags" / "zendrive_monthly_report.py"
    with smtp_server() as mailbox:
        env = {
            "AIRFLOW_CONN_ZENDRIVE_DEFAULT": zendrive_emulator.connection_uri(),
            "AIRFLOW_CONN_SMTP_DEFAULT": mailbox.connection_json(),
            "ZENDRIVE_REPORT_BASE": str(tmp_path / "reports"),
            "ZENDRIVE_REPORT_TO": "billing@example.com",
            "ZENDRIVE_POKE_INTERVAL": "0.5",
        }
        result = airflow_runner.run(
            "zendrive_monthly_report",
            "2026-05-01",
            dags_folder=dags,
            env=env,
            conf={"check_warehouse": False},
        )
    assert result.state == "success", result.output[-3000:]
    with (tmp_path / "reports" / "zendrive-usage-2026-04.csv").open() as handle:
        rows = list(csv.DictReader(handle))

    ((_, message),) = mailbox.messages
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert message["Subject"] == f"ZenDRIVE usage report, service {DEMO_SERVICE_ID}, 2026-04: reconciled"
    plain, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html_part is not None
    text, html = plain.get_content(), html_part.get_content()
    assert "Reconciled: 30 daily rows == API summary" in text
    requests = sum(int(row["total_requests"]) for row in rows)
    assert f"Requests:             {requests:,} (" in text
    content_ids = {str(part["Content-ID"]).strip("<>") for part in message.walk() if part["Content-ID"]}
    assert set(re.findall(r"cid:([^\"'\s)>]+)", html)) <= content_ids  # every cid: resolves (there are none)
    assert UNSUPPORTED.search(html) is None, UNSUPPORTED.search(html)
    assert len(html.encode("utf-8")) < 100_000  # Gmail clips longer messages

    path = tmp_path / "mail.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page()
    try:
        opened = Opened(page, path)
        page.evaluate("() => document.querySelectorAll('svg, style').forEach(element => element.remove())")
        assert page.locator("svg, style").count() == 0
        assert opened.errors == []
        assert opened.requests == [opened.url]
        for field in ("bytes_sent", "total_requests"):
            chart = page.locator(f'table.chart[data-field="{field}"] tr[data-date]')
            measured = chart.evaluate_all(MEASURE_MAIL)
            values = [int(row[field]) for row in rows]
            assert [(day["date"], int(day["value"])) for day in measured] == list(
                zip(DAYS, values, strict=True)
            )
            widest = max(measured, key=lambda day: int(day["value"]))
            scale = widest["width"] / int(widest["value"])
            assert widest["width"] > 300, "the longest bar is drawn"
            for day, value in zip(measured, values, strict=True):
                assert abs(day["width"] - value * scale) <= 1, (field, day)
    finally:
        page.close()
