"""
The monthly report as an email: a plain-text part and an HTML part that mail clients render as written.

The HTML file next to the CSV draws its charts as inline SVG, which Gmail, Outlook and Yahoo do not display.
The mailed HTML draws them as tables instead: one row per day, the bar a table cell whose ``width`` attribute
is the value on one scale and whose ``bgcolor`` is its colour. That is the HTML mail clients have rendered
longest, Outlook's Word engine included: no ``<svg>``, no image to embed or to block, no script, no
stylesheet that a client may drop (every style is inline or an attribute), no positioning, flex or grid. The
text part carries the totals, the reconciliation result and the daily numbers.

Pure and cheap to import (stdlib only at import time): the same input gives the same message parts.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_zendrive._outputs.reconcile import ReportMonth
from airflow_provider_zendrive._outputs.report_html import (
    GB,
    INK,
    MONTH_NAMES,
    MUTED,
    QUIET,
    REQUESTS,
    RULE,
    SENT,
    WEEKDAYS,
    Day,
    calendar_days,
    gb_text,
    rate_text,
)
from airflow_provider_zendrive._outputs.summary import format_volume

if TYPE_CHECKING:
    from airflow_provider_zendrive._client.models import UsageStats

__all__ = ["ReportEmail", "monthly_report_email"]

#: The message's width, in CSS pixels: what every client shows without scrolling.
_WIDTH = 640
#: The longest bar of a chart, in pixels.
_BAR = 400
_FONT = "font-family:Helvetica,Arial,'Liberation Sans',sans-serif;"
_OK = ("#eef6f0", "#1e4d2b")
_FAILED = ("#fdf0ef", "#7a1f17")


@dataclass(frozen=True)
class ReportEmail:
    """
    The monthly report, for :class:`~airflow_provider_zendrive.notifications.zendrive.ZenDriveEmailNotifier`.

    :param subject: one line: service, month and the reconciliation's outcome.
    :param text: the ``text/plain`` part.
    :param html: the ``text/html`` part (tables and inline styles only).
    """

    subject: str
    text: str
    html: str


def monthly_report_email(
    stats: UsageStats,
    *,
    month: str,
    reconciliation: Sequence[str] | None = None,
    checked: str = "",
) -> ReportEmail:
    """
    The monthly report as an email: the same arguments and numbers as
    :func:`~airflow_provider_zendrive.reports.monthly_report_html`.

    In the HTML part each chart is a ``<table class="chart" data-field="...">`` with one ``<tr data-date
    data-value>`` a day; the day's bar is the ``<td class="bar">`` in it, ``width`` pixels wide (value times
    the chart's scale, rounded; at least 1 for a non-zero value), and absent on a zero day.

    :raises ValueError: as :func:`~airflow_provider_zendrive.reports.monthly_report_html`.
    """
    reported = ReportMonth.parse(month)
    days = calendar_days(stats, reported.first, reported.last)
    problems = [str(problem) for problem in reconciliation or ()]
    outcome = "reconciliation FAILED" if problems else "reconciled"
    return ReportEmail(
        subject=f"ZenDRIVE usage report, service {stats['service_id']}, {reported.name}: {outcome}",
        text=_text(stats, reported, days, problems, checked),
        html=_html(stats, reported, days, problems, checked),
    )


def _heading(stats: UsageStats, month: ReportMonth) -> str:
    return f"ZenDRIVE usage, service {stats['service_id']}, {MONTH_NAMES[month.first.month - 1]} {month.first.year}"


def _verdict(problems: list[str], checked: str) -> list[str]:
    """The reconciliation result, one line each (the same words in both parts)."""
    if not problems:
        return [f"Reconciled: {checked}" if checked else "Reconciled."]
    count = f"{len(problems)} problem{'' if len(problems) == 1 else 's'}"
    lines = [f"Reconciliation FAILED: {count}. Do not bill from these numbers until they are resolved."]
    lines += [f"- {problem}" for problem in problems]
    return [*lines, f"Compared: {checked}"] if checked else lines


def _totals(stats: UsageStats, days: list[Day]) -> list[tuple[str, str]]:
    summary = stats["summary"]
    total, successful = summary["total_requests"], summary["successful_requests"]
    month_ips = summary["unique_ips"]
    return [
        (
            "Requests",
            f"{total:,} ({successful:,} successful, {summary['client_errors']:,} client errors, "
            f"{summary['auth_failures']:,} auth failures)",
        ),
        ("Success rate", rate_text(successful, total).replace("\u00a0", " ")),
        ("Sent", f"{format_volume(summary['bytes_sent'])} ({format_volume(summary['bytes_sent'], 'GiB')})"),
        (
            "Received",
            f"{format_volume(summary['bytes_received'])} ({format_volume(summary['bytes_received'], 'GiB')})",
        ),
        ("Days without traffic", f"{sum(day.quiet for day in days)} of {len(days)}"),
        (
            "Unique IPs",
            f"{max((day.counts['unique_ips'] for day in days), default=0):,} on the busiest day, "
            + ("n/a" if month_ips is None else f"{month_ips:,}")
            + " distinct over the month",
        ),
    ]


_NOTE = (
    "GB are decimal gigabytes (1 GB = 10^9 bytes), as ZenDRIVE bills; GiB are binary (1 GiB = 2^30 bytes). "
    "Days without traffic, which the API omits, count as zero. Dates are UTC days."
)


def _text(stats: UsageStats, month: ReportMonth, days: list[Day], problems: list[str], checked: str) -> str:
    lines = [
        _heading(stats, month),
        f"{month.first.isoformat()} to {month.last.isoformat()} (UTC), {len(days)} days.",
        "",
        *_verdict(problems, checked),
        "",
        "Totals of the month (the API's summary)",
        *(f"  {label + ':':<22}{value}" for label, value in _totals(stats, days)),
        "",
        "Daily numbers",
        f"  {'Date':<12}{'Day':<5}{'Requests':>12}{'Successful':>12}{'GB sent':>12}{'GB received':>13}",
    ]
    for day in days:
        c = day.counts
        lines.append(
            f"  {day.date.isoformat():<12}{WEEKDAYS[day.date.weekday()]:<5}{c['total_requests']:>12,}"
            f"{c['successful_requests']:>12,}{gb_text(c['bytes_sent']):>12}{gb_text(c['bytes_received']):>13}"
        )
    sums = {name: sum(day.counts[name] for day in days) for name in ("total_requests", "successful_requests")}
    sent = sum(day.counts["bytes_sent"] for day in days)
    received = sum(day.counts["bytes_received"] for day in days)
    lines += [
        f"  {'Sum of days':<17}{sums['total_requests']:>12,}{sums['successful_requests']:>12,}"
        f"{gb_text(sent):>12}{gb_text(received):>13}",
        "",
        _NOTE,
    ]
    return "\n".join(lines) + "\n"


def _html(stats: UsageStats, month: ReportMonth, days: list[Day], problems: list[str], checked: str) -> str:
    esc = html.escape
    heading = _heading(stats, month)
    background, ink = _FAILED if problems else _OK
    verdict = "".join(
        f'<p style="margin:0 0 4px 0;{_FONT}font-size:14px;color:{ink}">{esc(line)}</p>'
        for line in _verdict(problems, checked)
    )
    totals = "".join(
        f'<tr><td width="170" style="{_FONT}font-size:13px;color:{MUTED};padding:3px 8px 3px 0">{esc(label)}</td>'
        f'<td style="{_FONT}font-size:14px;color:{INK};padding:3px 0">{esc(value)}</td></tr>'
        for label, value in _totals(stats, days)
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{esc(heading)}</title>\n</head>\n",
        '<body style="margin:0;padding:0;background-color:#f5f6f8" bgcolor="#f5f6f8">\n',
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f5f6f8">'
        '<tr><td align="center" style="padding:16px 8px">\n',
        f'<table role="presentation" width="{_WIDTH}" cellpadding="0" cellspacing="0" border="0" '
        f'bgcolor="#ffffff" style="width:{_WIDTH}px;border:1px solid {RULE}">\n',
        f'<tr><td style="padding:20px 20px 8px 20px"><p style="margin:0;{_FONT}font-size:12px;color:{MUTED}">'
        "ZenDRIVE S3 Access &middot; monthly usage report</p>"
        f'<h1 style="margin:4px 0;{_FONT}font-size:22px;color:{INK}">{esc(heading)}</h1>'
        f'<p style="margin:0;{_FONT}font-size:13px;color:{MUTED}">{month.first.isoformat()} to '
        f"{month.last.isoformat()} (UTC), {len(days)} days.</p></td></tr>\n",
        f'<tr><td style="padding:8px 20px"><table role="presentation" width="100%" cellpadding="0" '
        f'cellspacing="0" border="0"><tr><td class="status" bgcolor="{background}" style="padding:10px 14px">'
        f"{verdict}</td></tr></table></td></tr>\n",
        f'<tr><td style="padding:8px 20px"><h2 style="margin:0 0 6px 0;{_FONT}font-size:16px;color:{INK}">'
        "Totals of the month</h2>"
        f'<table role="presentation" cellpadding="0" cellspacing="0" border="0">{totals}</table></td></tr>\n',
        _chart(
            days,
            field="bytes_sent",
            caption="GB sent per day",
            fill=SENT,
            label=lambda value: f"{value / GB:,.1f} GB",
        ),
        _chart(
            days,
            field="total_requests",
            caption="Requests per day",
            fill=REQUESTS,
            label=lambda value: f"{value:,}",
        ),
        f'<tr><td style="padding:12px 20px 20px 20px;{_FONT}font-size:12px;color:{MUTED}">{esc(_NOTE)} '
        "The daily table is in the report's HTML file and in its CSV.</td></tr>\n",
        "</table>\n</td></tr></table>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def _chart(days: list[Day], *, field: str, caption: str, fill: str, label: Callable[[int], str]) -> str:
    """One table row a day: the date, the bar (a cell ``value x scale`` px wide), the value."""
    esc = html.escape
    values = [day.counts[field] for day in days]
    top = max(values, default=0)
    rows = []
    for day, value in zip(days, values, strict=True):
        width = max(1, round(value * _BAR / top)) if value else 0
        bar = (
            f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="{width}" '
            f'style="width:{width}px"><tr><td class="bar" width="{width}" height="12" bgcolor="{fill}" '
            f'style="width:{width}px;height:12px;font-size:1px;line-height:1px">&nbsp;</td></tr></table>'
            if width
            else ""
        )
        shade = f' bgcolor="{QUIET}"' if day.quiet else ""
        rows.append(
            f'<tr data-date="{day.date.isoformat()}" data-value="{value}"{shade}>'
            f'<td width="70" style="{_FONT}font-size:12px;color:{INK};padding:1px 6px 1px 0;white-space:nowrap">'
            f"{day.date.day} {WEEKDAYS[day.date.weekday()][:2]}</td>"
            f'<td width="{_BAR}" style="padding:1px 0">{bar}</td>'
            f'<td align="right" style="{_FONT}font-size:12px;color:{MUTED};padding:1px 0 1px 6px;'
            f'white-space:nowrap">{esc("no traffic" if day.quiet and not value else label(value))}</td></tr>'
        )
    return (
        f'<tr><td style="padding:12px 20px 4px 20px"><h2 style="margin:0 0 6px 0;{_FONT}font-size:16px;'
        f'color:{INK}">{esc(caption)}</h2>'
        f'<table class="chart" data-field="{esc(field)}" role="presentation" width="{_WIDTH - 40}" '
        f'cellpadding="0" cellspacing="0" border="0">\n' + "\n".join(rows) + "\n</table></td></tr>\n"
    )
