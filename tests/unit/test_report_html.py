"""The monthly HTML report: one pure function, checked on its text (the rendering is tests/report/)."""

from __future__ import annotations

import copy
import datetime
import html.parser
import re

import pytest

from airflow_provider_zendrive._client.models import UsageStats
from airflow_provider_zendrive._outputs.report_html import monthly_report_html
from airflow_provider_zendrive.testing._data import DEMO_SERVICE_ID, window_stats

D = datetime.date
GB, GIB = 10**9, 2**30
FIELDS = ("bytes_sent", "total_requests")
#: Elements without an end tag in HTML5.
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr", "line"}


class Bar:
    """One ``<rect class="bar">`` as written: its attributes and its tooltip."""

    def __init__(self, attrs: dict[str, str]) -> None:
        self.date = attrs["data-date"]
        self.value = int(attrs["data-value"])
        self.y = float(attrs["y"])
        self.height = float(attrs["height"])
        self.title = ""


class Report(html.parser.HTMLParser):
    """The report parsed: bars per chart, table rows, text per element class, and whether tags balance."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.bars: dict[str, list[Bar]] = {}
        self.ticks: dict[str, list[tuple[int, float]]] = {}
        self.table_dates: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.attrs: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}  # class of the innermost classed element -> its text
        self._classes: list[str] = []
        self._chart = ""
        self._bar: Bar | None = None
        self._tick: str | None = None
        self._td = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        self.attrs.append((tag, values))
        if tag not in VOID:
            self.stack.append(tag)
            self._classes.append(values.get("class", ""))
        if tag == "svg":
            self._chart = values["data-field"]
        elif tag == "rect" and "data-value" in values:
            self._bar = Bar(values)
            self.bars.setdefault(self._chart, []).append(self._bar)
        elif tag == "g" and values.get("class") == "tick":
            self._tick = values["data-value"]
        elif tag == "line" and self._tick is not None:
            self.ticks.setdefault(self._chart, []).append((int(self._tick), float(values["y1"])))
        elif tag == "td":
            self._td += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.unbalanced.append(tag)
            return
        self.stack.pop()
        self._classes.pop()
        if tag == "rect":
            self._bar = None
        elif tag == "g":
            self._tick = None
        elif tag == "tr":
            self._td = 0

    def handle_data(self, data: str) -> None:
        if self._bar is not None and self.stack[-1] == "title":
            self._bar.title += data
        if self._td == 1 and self.stack and self.stack[-1] == "td" and re.fullmatch(r"\d{4}-\d\d-\d\d", data):
            self.table_dates.append(data)
        for cls in reversed(self._classes):
            if cls:
                for name in cls.split():
                    self.text[name] = self.text.get(name, "") + data
                break


def april(service_id: int = DEMO_SERVICE_ID) -> UsageStats:
    """The emulator's April 2026: 30 days, 4 of them without traffic (absent from ``daily``)."""
    return window_stats(service_id, D(2026, 4, 1), D(2026, 4, 30))


def all_days(first: D, last: D) -> list[str]:
    return [(first + datetime.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def test_one_bar_per_calendar_day_quiet_days_included_as_zero() -> None:
    stats = april()
    listed = {day["date"]: day for day in stats["daily"]}
    assert 0 < len(listed) < 30, "the fixture month should have quiet days"
    report = Report(monthly_report_html(stats, month="2026-04"))
    days = all_days(D(2026, 4, 1), D(2026, 4, 30))
    assert sorted(report.bars) == sorted(FIELDS)
    for field in FIELDS:
        bars = report.bars[field]
        assert [bar.date for bar in bars] == days
        assert [bar.value for bar in bars] == [
            listed[day][field] if day in listed else 0  # type: ignore[literal-required]
            for day in days
        ]
        quiet = [bar for bar in bars if bar.date not in listed]
        assert quiet
        assert all(bar.height == 0 and "no traffic" in bar.title for bar in quiet)
    assert report.table_dates == days


@pytest.mark.parametrize(("month", "days"), [("2026-02", 28), ("2028-02", 29), ("2026-12", 31)])
def test_every_month_length(month: str, days: int) -> None:
    first = D.fromisoformat(f"{month}-01")
    last = first + datetime.timedelta(days=days - 1)
    report = Report(monthly_report_html(window_stats(7, first, last), month=month))
    for field in FIELDS:
        assert [bar.date for bar in report.bars[field]] == all_days(first, last)


@pytest.mark.parametrize("field", FIELDS)
def test_bar_heights_are_proportional_to_the_values_on_one_baseline(field: str) -> None:
    bars = Report(monthly_report_html(april(), month="2026-04")).bars[field]
    tallest = max(bars, key=lambda bar: bar.value)
    per_unit = tallest.height / tallest.value
    assert tallest.height > 100  # a readable chart, not a sliver
    for bar in bars:
        assert bar.height == pytest.approx(bar.value * per_unit, abs=0.01), bar.date
    assert len({round(bar.y + bar.height, 2) for bar in bars}) == 1, "bars grow from different baselines"


@pytest.mark.parametrize("field", FIELDS)
def test_the_axis_ticks_sit_on_the_bars_scale(field: str) -> None:
    report = Report(monthly_report_html(april(), month="2026-04"))
    bars, ticks = report.bars[field], report.ticks[field]
    tallest = max(bars, key=lambda bar: bar.value)
    per_unit = tallest.height / tallest.value
    baseline = tallest.y + tallest.height
    assert ticks[0][0] == 0
    assert ticks[-1][0] >= tallest.value, "the axis stops below the tallest bar"
    for value, y in ticks:
        assert y == pytest.approx(baseline - value * per_unit, abs=0.01), value


def cards(text: str) -> dict[str, tuple[str, str]]:
    """The totals: label -> (value, the line under it)."""
    found = re.findall(
        r'<div class="label">(.*?)</div><div class="value">(.*?)</div><div class="sub">(.*?)</div>', text
    )
    return {label: (value, sub) for label, value, sub in found}


def test_totals_use_thousands_separators_decimal_gb_and_gib() -> None:
    stats = april()
    summary = stats["summary"]
    text = monthly_report_html(stats, month="2026-04")
    totals = cards(text)
    assert list(totals) == [
        "Requests",
        "Success rate",
        "Sent",
        "Received",
        "Days without traffic",
        "Unique IPs, busiest day",
    ]
    assert totals["Requests"][0] == f"{summary['total_requests']:,}"
    assert re.fullmatch(r"\d,\d{3},\d{3}", totals["Requests"][0])
    rate = summary["successful_requests"] / summary["total_requests"] * 100
    assert totals["Success rate"][0] == f"{rate:.2f}\u00a0%"
    sent, received = summary["bytes_sent"], summary["bytes_received"]
    assert totals["Sent"] == (f"{sent / GB:,.1f} GB", f"{sent / GIB:,.1f} GiB, {sent:,} bytes")
    assert totals["Received"] == (
        f"{received / GB:,.1f} GB",
        f"{received / GIB:,.1f} GiB, {received:,} bytes",
    )
    assert totals["Days without traffic"][0] == "4 of 30"
    busiest = max(day["unique_ips"] for day in stats["daily"])
    assert totals["Unique IPs, busiest day"][0] == str(busiest)
    assert "<title>ZenDRIVE usage, service 1234, April 2026</title>" in text
    assert "<h1>ZenDRIVE usage, service 1234, April 2026</h1>" in text


def test_reconciled_shows_what_was_compared() -> None:
    checked = "30 daily rows == API summary == warehouse table"
    outcomes: tuple[list[str] | None, ...] = (None, [])
    for outcome in outcomes:
        report = Report(
            monthly_report_html(april(), month="2026-04", reconciliation=outcome, checked=checked)
        )
        assert report.text["mark"] == "\u2713"
        assert report.text["verdict"].strip() == f"Reconciled: {checked}"
        assert "failed" not in report.text


def test_problems_are_shown_first_and_prominently() -> None:
    problems = ["the table has no row for 2026-04-03", "the API summary differs from the daily rows"]
    text = monthly_report_html(april(), month="2026-04", reconciliation=problems, checked="API == table")
    report = Report(text)
    assert "Reconciliation failed: 2 problems" in report.text["verdict"]
    assert "Reconciled" not in text
    assert all(f"<li>{problem}</li>" in text for problem in problems)
    assert '<div class="status failed" role="alert">' in text
    # Before the totals and the charts, and in the page title (what a mail subject or a tab shows).
    assert text.index('role="alert"') < text.index('class="totals"') < text.index("<svg")
    assert "<title>ZenDRIVE usage, service 1234, April 2026 (reconciliation failed)</title>" in text


def test_every_text_from_the_input_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    text = monthly_report_html(april(), month="2026-04", reconciliation=[hostile], checked=hostile)
    assert "<script" not in text
    assert "<img" not in text
    assert html.escape(hostile) in text
    assert text.count(html.escape(hostile)) == 2  # the problem and "Compared: ..."


def test_self_contained_no_script_no_external_resource() -> None:
    text = monthly_report_html(april(), month="2026-04", reconciliation=["x"])
    lowered = text.lower()
    for needle in (
        "<script",
        "<link",
        "<img",
        "<iframe",
        "<object",
        "@import",
        "url(",
        "src=",
        "href=",
        "//",
    ):
        assert needle not in lowered, needle
    report = Report(text)
    assert not any(name.startswith("on") for _, attrs in report.attrs for name in attrs)


def test_well_formed_html5() -> None:
    text = monthly_report_html(april(), month="2026-04", reconciliation=["a problem"], checked="x")
    assert text.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert '<meta charset="utf-8">' in text[:200]
    report = Report(text)
    assert report.unbalanced == []
    assert report.stack == []
    assert report.tags.count("svg") == 2
    assert report.tags.count("title") == 1 + 2 + 2 * 30  # the page, each chart, each bar
    text.encode("utf-8")  # nothing unencodable


def test_a_month_without_any_traffic() -> None:
    stats = window_stats(DEMO_SERVICE_ID, D(2026, 4, 1), D(2026, 4, 30), new=True)
    assert stats["daily"] == []
    report = Report(monthly_report_html(stats, month="2026-04"))
    for field in FIELDS:
        assert len(report.bars[field]) == 30
        assert all(bar.value == 0 and bar.height == 0 for bar in report.bars[field])
        assert len(report.ticks[field]) >= 2  # an axis, even with nothing to scale it
    totals = cards(monthly_report_html(stats, month="2026-04"))
    assert totals["Days without traffic"][0] == "30 of 30"
    assert totals["Success rate"][0] == "n/a (no requests)"
    assert totals["Sent"][0] == "0.0 GB"


def test_huge_counters_are_exact_in_the_attributes() -> None:
    stats = april()
    stats["daily"][0]["bytes_sent"] = 2**63 - 1
    bars = Report(monthly_report_html(stats, month="2026-04")).bars["bytes_sent"]
    assert bars[0].value == 2**63 - 1
    assert max(bar.height for bar in bars) == bars[0].height


def test_pure_the_same_input_gives_the_same_text_and_is_not_changed() -> None:
    stats = april()
    before = copy.deepcopy(stats)
    first = monthly_report_html(stats, month="2026-04", reconciliation=["p"], checked="c")
    assert monthly_report_html(stats, month="2026-04", reconciliation=["p"], checked="c") == first
    assert stats == before


@pytest.mark.parametrize("month", ["2026-4", "2026-13", "April", "2026-04-01", ""])
def test_a_malformed_month_is_refused(month: str) -> None:
    with pytest.raises(ValueError, match="month must be YYYY-MM"):
        monthly_report_html(april(), month=month)


def test_stats_for_another_window_are_refused() -> None:
    with pytest.raises(ValueError, match=r"cover 2026-04-01\.\.2026-04-30, not the month 2026-05-01"):
        monthly_report_html(april(), month="2026-05")
    stats = april()
    stats["daily"].append({**stats["daily"][-1], "date": "2026-05-01"})
    with pytest.raises(ValueError, match="outside the month"):
        monthly_report_html(stats, month="2026-04")
    stats = april()
    stats["daily"].append(stats["daily"][-1])
    with pytest.raises(ValueError, match="twice"):
        monthly_report_html(stats, month="2026-04")
