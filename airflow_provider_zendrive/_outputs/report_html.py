"""
The monthly report as one self-contained HTML page: the month's totals, the reconciliation result, a bar chart
of GB sent per day and one of requests per day, and the daily numbers as a table.

Self-contained means it renders offline, from a file or an object-storage link: no JavaScript, no external
stylesheet, font or image. The charts are inline SVG, which browsers, Apple Mail and Thunderbird display; the
emailed report is :mod:`.report_mail`'s, whose charts are tables (Gmail and Outlook do not display SVG). Every
text that comes from the input is escaped. The day model, palette and number formats here are shared with
:mod:`.report_mail`.

Pure and cheap to import (stdlib only at import time): the same input gives the same text. No clock and no
locale: month names and number formats are fixed, ``1,234,567`` and ``April 2026`` everywhere; volumes read as
in the usage summary (:func:`~airflow_provider_zendrive.reports.format_volume`).
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_zendrive._outputs.reconcile import ReportMonth
from airflow_provider_zendrive._outputs.summary import VOLUME_UNITS, format_volume

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import UsageStats

__all__ = ["monthly_report_html"]

GB = VOLUME_UNITS["GB"]  # decimal, as the vendor bills; GiB are shown alongside

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DASH = "\u2013"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# The neutral palette: text, secondary text, rules, and one accent per chart.
INK = "#1f2328"
MUTED = "#5b6470"
RULE = "#d8dde3"
GRID = "#e9ecf0"
QUIET = "#f1f3f5"
SENT = "#3f6e9e"
REQUESTS = "#4d8a7d"

# Chart geometry, in SVG user units (= CSS pixels at the page's 960 px width).
_WIDTH = 920
_HEIGHT = 250
_LEFT = 76
_RIGHT = 12
_TOP = 26
_BOTTOM = 54


@dataclass(frozen=True)
class Day:
    date: datetime.date
    counts: dict[str, int]
    quiet: bool  # no traffic: no request (the API omits such a day), as the usage summary counts it


def monthly_report_html(
    stats: UsageStats,
    *,
    month: str,
    reconciliation: Sequence[str] | None = None,
    checked: str = "",
) -> str:
    """
    Render the report of one calendar month as a self-contained HTML5 page (UTF-8, no JavaScript).

    The charts and the table have one entry per calendar day of the month, oldest first; a day the API omitted
    (no traffic) is a zero: a zero-height bar, a shaded column, a zero row. Each bar is a ``<rect
    class="bar">`` with ``data-date`` (``YYYY-MM-DD``) and ``data-value`` (the day's exact integer: bytes sent,
    or requests) and a ``<title>`` tooltip; within a chart, bar heights are proportional to the values.

    The totals are the API's ``summary``; the table's last row adds up the days, so a difference between the
    two is visible (the reconciliation is what reports it).

    :param stats: the API's answer for the month, as the hook returns it (``from`` / ``to`` = the month).
    :param month: the month reported, ``YYYY-MM``.
    :param reconciliation: the problems the reconciliation found, one sentence each, shown first and
        prominently; None or empty: the sources agree.
    :param checked: what was compared when they agree, e.g. ``"30 daily rows == API summary == warehouse
        table"``.
    :raises ValueError: if ``month`` is not ``YYYY-MM``, or ``stats`` is not the answer for exactly that month
        (its window differs, or a day is outside it or listed twice).
    """
    reported = ReportMonth.parse(month)
    first, last = reported.first, reported.last
    days = calendar_days(stats, first, last)
    service = str(stats["service_id"])
    month_name = f"{MONTH_NAMES[first.month - 1]} {first.year}"
    heading = f"ZenDRIVE usage, service {service}, {month_name}"
    problems = [str(problem) for problem in reconciliation or ()]
    title = heading + (" (reconciliation failed)" if problems else "")
    esc = html.escape
    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        '<main class="report">\n<header>\n',
        '<p class="eyebrow">ZenDRIVE S3 Access &middot; monthly usage report</p>\n',
        f"<h1>{esc(heading)}</h1>\n",
        f'<p class="meta">{first.isoformat()} to {last.isoformat()} (UTC), {len(days)} days. '
        "Source: the ZenDRIVE usage-statistics API.</p>\n</header>\n",
        _status(problems, checked),
        _totals(stats, days),
        _chart(
            days,
            field="bytes_sent",
            caption="GB sent per day",
            note="decimal GB, 10\u2079 bytes",
            unit=GB,
            whole=False,
            fill=SENT,
            axis_label="GB",
            month_name=month_name,
            describe=lambda value: f"{format_volume(value)} sent ({value:,} bytes)",
        ),
        _chart(
            days,
            field="total_requests",
            caption="Requests per day",
            note="all requests, successful or not",
            unit=1,
            whole=True,
            fill=REQUESTS,
            axis_label="requests",
            month_name=month_name,
            describe=lambda value: f"{value:,} requests",
        ),
        _table(days),
        "<footer>\n<p>GB are decimal gigabytes (1 GB = 10\u2079 bytes), as ZenDRIVE bills; GiB are binary "
        "(1 GiB = 2\u00b3\u2070 bytes). Days without traffic, which the API omits, count as zero. Dates are UTC "
        "days.</p>\n</footer>\n",
        "</main>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def calendar_days(stats: UsageStats, first: datetime.date, last: datetime.date) -> list[Day]:
    """One entry per calendar day of the month, zeros where the API omitted the day."""
    from airflow_provider_zendrive._client.models import DAILY_FIELDS  # at call time: importing stays cheap

    window = (stats["from"], stats["to"])
    if window != (first.isoformat(), last.isoformat()):
        raise ValueError(
            f"the stats cover {window[0]}..{window[1]}, not the month {first.isoformat()}..{last.isoformat()}"
        )
    listed: dict[str, dict[str, int]] = {}
    for entry in stats["daily"]:
        date = entry["date"]
        if not first.isoformat() <= date <= last.isoformat():
            raise ValueError(f"the stats list day {date!r} outside the month {first.isoformat()}..{last}")
        if date in listed:
            raise ValueError(f"the stats list day {date} twice")
        listed[date] = {name: int(entry[name]) for name in DAILY_FIELDS}  # type: ignore[literal-required]
    days = []
    for offset in range((last - first).days + 1):
        day = first + datetime.timedelta(days=offset)
        counts = listed.get(day.isoformat())
        if counts is None:
            days.append(Day(day, dict.fromkeys(DAILY_FIELDS, 0), quiet=True))
        else:
            days.append(Day(day, counts, quiet=counts["total_requests"] == 0))
    return days


def gb_text(value: int) -> str:
    """For the table, whose column says GB: two decimals."""
    return f"{value / GB:,.2f}"


def rate_text(successful: int, total: int, *, none: str = "n/a (no requests)") -> str:
    return f"{successful / total:.2%}".replace("%", "\u00a0%") if total else none


def _status(problems: list[str], checked: str) -> str:
    esc = html.escape
    if problems:
        items = "".join(f"<li>{esc(problem)}</li>\n" for problem in problems)
        compared = f'<p class="checked">Compared: {esc(checked)}</p>\n' if checked else ""
        return (
            '<div class="status failed" role="alert">\n'
            '<p class="verdict"><span class="mark" aria-hidden="true">&#x2717;</span> Reconciliation failed: '
            f"{len(problems)} problem{'' if len(problems) == 1 else 's'}. Do not bill from these numbers until "
            f"they are resolved.</p>\n<ul>\n{items}</ul>\n{compared}</div>\n"
        )
    detail = f": {esc(checked)}" if checked else "."
    return (
        '<div class="status ok">\n<p class="verdict"><span class="mark" aria-hidden="true">&#x2713;</span> '
        f"Reconciled{detail}</p>\n</div>\n"
    )


def _totals(stats: UsageStats, days: list[Day]) -> str:
    summary = stats["summary"]
    total = summary["total_requests"]
    successful = summary["successful_requests"]
    quiet = sum(day.quiet for day in days)
    busiest_ips = max((day.counts["unique_ips"] for day in days), default=0)
    month_ips = summary["unique_ips"]
    cards = [
        (
            "Requests",
            f"{total:,}",
            f"{successful:,} successful, {summary['client_errors']:,} client errors, "
            f"{summary['auth_failures']:,} auth failures",
        ),
        ("Success rate", rate_text(successful, total), "successful / all requests"),
        (
            "Sent",
            format_volume(summary["bytes_sent"]),
            f"{format_volume(summary['bytes_sent'], 'GiB')}, {summary['bytes_sent']:,} bytes",
        ),
        (
            "Received",
            format_volume(summary["bytes_received"]),
            f"{format_volume(summary['bytes_received'], 'GiB')}, {summary['bytes_received']:,} bytes",
        ),
        ("Days without traffic", f"{quiet} of {len(days)}", "zero in the charts and the table"),
        (
            "Unique IPs, busiest day",
            f"{busiest_ips:,}",
            "distinct over the month (API): " + ("n/a" if month_ips is None else f"{month_ips:,}"),
        ),
    ]
    esc = html.escape
    body = "".join(
        f'<div class="card"><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>'
        f'<div class="sub">{esc(sub)}</div></div>\n'
        for label, value, sub in cards
    )
    return f'<section class="totals" aria-label="Totals of the month">\n{body}</section>\n'


def _nice_step(top: float, ticks: int = 4) -> float:
    """The gridline step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` steps up to ``top``."""
    raw = top / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if raw <= m * power * (1 + 1e-9))


def _decimals(step: float) -> int:
    return next(d for d in range(10) if abs(round(step, d) - step) <= step * 1e-9)


def _number(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0") if value < 10 else f"{value:,.0f}"


def _chart(
    days: list[Day],
    *,
    field: str,
    caption: str,
    note: str,
    unit: int,
    whole: bool,
    fill: str,
    axis_label: str,
    month_name: str,
    describe: Callable[[int], str],
) -> str:
    """A bar chart, one ``<rect class="bar">`` a day, heights on one linear scale from a zero baseline."""
    esc = html.escape
    values = [day.counts[field] for day in days]
    # The axis is in display units (GB, requests); whole requests only.
    top = max(values) / unit
    step = _nice_step(top) if top > 0 else 1.0
    if whole:  # whole requests: no fractional gridlines
        step = float(max(1, math.ceil(step)))
    steps = max(1, math.ceil(top / step - 1e-9))
    axis_max = step * steps
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    baseline = _TOP + plot_h
    per_unit = plot_h / (axis_max * unit)  # px per byte / per request
    slot = plot_w / len(days)
    bar_w = slot * 0.7
    decimals = _decimals(step)
    svg = [
        f'<svg class="chart" data-field="{esc(field)}" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{esc(caption)}, '
        f'{esc(month_name)}" font-family="Liberation Sans, Arial, Helvetica, sans-serif" font-size="11">\n',
        f"<title>{esc(caption)}, {esc(month_name)}</title>\n",
    ]
    for index, day in enumerate(days):
        if day.quiet:
            svg.append(
                f'<rect class="quiet-day" x="{_LEFT + index * slot:.2f}" y="{_TOP}" width="{slot:.2f}" '
                f'height="{plot_h}" fill="{QUIET}"/>\n'
            )
    for tick in range(steps + 1):
        display = tick * step
        y = baseline - display * unit * per_unit
        label = _number(display) if whole else f"{display:,.{decimals}f}"
        svg.append(
            f'<g class="tick" data-value="{display * unit:.0f}">'
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.2f}" y2="{y:.2f}" '
            f'stroke="{RULE if tick == 0 else GRID}" stroke-width="1"/>'
            f'<text x="{_LEFT - 8}" y="{y + 4:.2f}" text-anchor="end" fill="{MUTED}">{esc(label)}</text></g>\n'
        )
    svg.append(
        f'<text class="axis-label" x="{_LEFT - 8}" y="{_TOP - 12}" text-anchor="end" fill="{MUTED}" '
        f'font-weight="bold">{esc(axis_label)}</text>\n'
    )
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        height = value * per_unit
        x = _LEFT + index * slot + (slot - bar_w) / 2
        centre = _LEFT + (index + 0.5) * slot
        weekday = WEEKDAYS[day.date.weekday()]
        tip = f"{day.date.isoformat()} ({weekday}): " + (
            "no traffic" if day.quiet and not value else describe(value)
        )
        svg.append(
            f'<rect class="bar" data-date="{day.date.isoformat()}" data-value="{value}" x="{x:.2f}" '
            f'y="{baseline - height:.3f}" width="{bar_w:.2f}" height="{height:.3f}" fill="{fill}">'
            f"<title>{esc(tip)}</title></rect>\n"
            f'<text x="{centre:.2f}" y="{baseline + 15}" text-anchor="middle" fill="{INK}">{day.date.day}</text>'
            f'<text x="{centre:.2f}" y="{baseline + 28}" text-anchor="middle" fill="{MUTED}" font-size="9">'
            f"{weekday[:2]}</text>\n"
        )
    svg.append(
        f'<text class="axis-label" x="{_LEFT + plot_w / 2:.2f}" y="{_HEIGHT - 6}" text-anchor="middle" '
        f'fill="{MUTED}">Day of {esc(month_name)} (UTC); shaded: no traffic</text>\n</svg>\n'
    )
    return (
        f'<section class="chart-panel">\n<h2>{esc(caption)} <span class="note">{esc(note)}</span></h2>\n'
        + "".join(svg)
        + "</section>\n"
    )


def _table(days: list[Day]) -> str:
    head = (
        "<tr><th>Date</th><th>Day</th><th>Requests</th><th>Successful</th><th>Success</th>"
        "<th>Client errors</th><th>Auth failures</th><th>GB sent</th><th>GB received</th><th>Unique IPs</th></tr>"
    )
    rows = []
    for day in days:
        c = day.counts
        row_class = ' class="quiet"' if day.quiet else ""
        rows.append(
            f"<tr{row_class}><td>{day.date.isoformat()}</td>"
            f"<td>{WEEKDAYS[day.date.weekday()]}</td>"
            f"<td>{c['total_requests']:,}</td><td>{c['successful_requests']:,}</td>"
            f"<td>{rate_text(c['successful_requests'], c['total_requests'], none=_DASH)}</td>"
            f"<td>{c['client_errors']:,}</td><td>{c['auth_failures']:,}</td>"
            f'<td title="{c["bytes_sent"]:,} bytes">{gb_text(c["bytes_sent"])}</td>'
            f'<td title="{c["bytes_received"]:,} bytes">{gb_text(c["bytes_received"])}</td>'
            f"<td>{c['unique_ips']:,}</td></tr>\n"
        )
    from airflow_provider_zendrive._client.models import ADDITIVE_FIELDS

    sums = {name: sum(day.counts[name] for day in days) for name in ADDITIVE_FIELDS}
    busiest = max((day.counts["unique_ips"] for day in days), default=0)
    foot = (
        f"<tr><th>Sum of days</th><th></th><td>{sums['total_requests']:,}</td>"
        f"<td>{sums['successful_requests']:,}</td>"
        f"<td>{rate_text(sums['successful_requests'], sums['total_requests'])}</td>"
        f"<td>{sums['client_errors']:,}</td><td>{sums['auth_failures']:,}</td>"
        f'<td title="{sums["bytes_sent"]:,} bytes">{gb_text(sums["bytes_sent"])}</td>'
        f'<td title="{sums["bytes_received"]:,} bytes">{gb_text(sums["bytes_received"])}</td>'
        f"<td>max {busiest:,}</td></tr>"
    )
    return (
        f'<section class="daily">\n<h2>Daily numbers</h2>\n<div class="scroll">\n<table>\n<thead>{head}</thead>\n'
        f"<tbody>\n{''.join(rows)}</tbody>\n<tfoot>{foot}</tfoot>\n</table>\n</div>\n</section>\n"
    )


_CSS = f"""
body{{margin:0;background:#f5f6f8;color:{INK};font:15px/1.5 "Helvetica Neue",Helvetica,Arial,"Liberation Sans",
"Segoe UI",Roboto,sans-serif;-webkit-text-size-adjust:100%}}
.report{{max-width:960px;margin:0 auto;padding:28px 20px 36px;box-sizing:border-box}}
header{{margin-bottom:18px}}
.eyebrow{{margin:0;color:{MUTED};font-size:12px;letter-spacing:.08em;text-transform:uppercase}}
h1{{margin:4px 0 4px;font-size:26px;line-height:1.25;font-weight:600}}
h2{{margin:0 0 10px;font-size:16px;font-weight:600}}
.note{{color:{MUTED};font-weight:400;font-size:13px;margin-left:6px}}
.meta{{margin:0;color:{MUTED};font-size:13px}}
.status{{border-radius:8px;padding:12px 16px;margin:0 0 18px;border:1px solid}}
.status p{{margin:0}}
.status.ok{{background:#eef6f0;border-color:#b8d8c1;color:#1e4d2b}}
.status.failed{{background:#fdf0ef;border-color:#e3a39c;color:#7a1f17;border-left-width:6px}}
.status.failed .verdict{{font-weight:600;font-size:16px}}
.status ul{{margin:8px 0 0;padding-left:22px}}
.status li{{margin:3px 0}}
.status .checked{{margin-top:8px;font-size:13px}}
.mark{{font-weight:700;margin-right:4px}}
.totals{{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px}}
.card{{flex:1 1 calc(33.333% - 12px);box-sizing:border-box;min-width:200px;background:#fff;
border:1px solid {RULE};border-radius:8px;padding:12px 16px}}
.label{{color:{MUTED};font-size:12px;text-transform:uppercase;letter-spacing:.06em}}
.value{{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums;margin:2px 0}}
.sub{{color:{MUTED};font-size:12px;font-variant-numeric:tabular-nums}}
.chart-panel,.daily{{background:#fff;border:1px solid {RULE};border-radius:8px;padding:16px 18px 10px;
margin:0 0 18px}}
svg.chart{{display:block;max-width:100%;height:auto;margin:0 auto}}
svg.chart .bar:hover{{opacity:.8}}
.scroll{{overflow-x:auto}}
table{{width:100%;border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}}
th,td{{padding:4px 8px;border-bottom:1px solid {GRID};text-align:right;white-space:nowrap}}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){{text-align:left}}
thead th{{color:{MUTED};font-weight:600;font-size:12px;border-bottom:1px solid {RULE}}}
tbody tr.quiet td{{color:#98a1ab;background:{QUIET}}}
tfoot th,tfoot td{{font-weight:600;border-top:1px solid {RULE};border-bottom:0}}
footer{{color:{MUTED};font-size:12px}}
footer p{{margin:0}}
""".strip()
