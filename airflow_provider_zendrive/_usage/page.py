"""
The usage page as one HTML document: inline CSS and inline SVG, no script, nothing fetched (the app sends a
Content-Security-Policy that forbids both). Every value shown passes through ``html.escape``; numbers are
formatted here, once, as the monthly report formats them (:func:`~airflow_provider_zendrive.reports.format_volume`).

Each chart has one scale: a bar's height is ``value / largest value * CHART_HEIGHT`` pixels, so heights are
proportional to the values (``tests/install/usage_page_in_chromium.py`` measures them in Chromium).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from airflow_provider_zendrive._outputs.summary import format_volume
from airflow_provider_zendrive._usage.data import REVISION_DAYS, DayTotals, UsageView

__all__ = ["CHART_HEIGHT", "render_error", "render_page"]

#: The tallest bar, in pixels.
CHART_HEIGHT = 160
_BAR = 9  # pixels per day, gap included
_LEFT = 86  # room for the axis labels
_TOP = 14

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#fff;margin:20px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#4b5563;margin:0 0 12px}
form{display:flex;gap:12px;align-items:end;margin:0 0 16px}label{display:flex;flex-direction:column;font-size:12px;color:#4b5563}
select,button{font:inherit;padding:4px 8px}
table{border-collapse:collapse;min-width:640px}th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:right}
th{background:#f3f4f6;font-weight:600}td:first-child,th:first-child,.text{text-align:left}.day{white-space:nowrap}
.track{display:inline-block;width:140px;height:10px;background:#e5e7eb;border-radius:5px;vertical-align:middle;overflow:hidden}
.fill{display:block;height:10px;background:#2563eb}.fill.over{background:#dc2626}
.empty{border:1px solid #f59e0b;background:#fffbeb;padding:12px 16px;border-radius:6px;max-width:820px}
svg text{font-size:11px;fill:#4b5563}
"""


def render_page(view: UsageView, action: str) -> str:
    """
    The page.

    :param view: what :func:`~airflow_provider_zendrive._usage.data.read_usage` read.
    :param action: the page's own path, for the month and service form.
    """
    e = html.escape
    scope = "every service" if view.service_id is None else f"service {view.service_id}"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        "<title>ZenDRIVE usage</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>ZenDRIVE usage</h1>",
        f'<p class="meta">Table <code>{e(view.table)}</code> on connection <code>{e(view.sql_conn_id)}</code>'
        f" · last pull: <strong data-last-pull>{e(view.last_pull or 'never')}</strong> (UTC)</p>",
        _form(view, action),
    ]
    if view.problem is not None:
        parts.append(f'<p class="empty" data-empty>{e(view.problem)}</p>')
    if view.rows:
        so_far = "so far" if view.through < view.month_last else "(the whole month)"
        parts.append(
            f"<h2>{e(view.month)} {so_far}: {e(view.month)}-01 to {e(view.through)}, {e(scope)}</h2>"
        )
        parts.append(_month_table(view))
    if view.daily and any(day.requests or day.bytes_sent for day in view.daily):
        first, last = view.daily[0].date, view.daily[-1].date
        parts.append(f"<h2>GB sent per day, {e(first)} to {e(last)}</h2>")
        parts.append(_chart(view.daily, "bytes_sent", lambda d: d.bytes_sent, format_volume))
        parts.append(f"<h2>Requests per day, {e(first)} to {e(last)}</h2>")
        parts.append(_chart(view.daily, "requests", lambda d: d.requests, lambda v: f"{v:,}"))
    if view.revisions_table is not None:
        parts.append(_revisions(view))
    parts.append("</body></html>")
    return "".join(parts)


def render_error(message: str) -> str:
    """A page that only says what was wrong with the request."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ZenDRIVE usage</title>'
        f'<style>{_STYLE}</style></head><body><h1>ZenDRIVE usage</h1><p class="empty">{html.escape(message)}'
        "</p></body></html>"
    )


def _form(view: UsageView, action: str) -> str:
    e = html.escape
    months = "".join(
        f'<option value="{e(m)}"{" selected" if m == view.month else ""}>{e(m)}</option>' for m in view.months
    )
    services = '<option value="">All services</option>' + "".join(
        f'<option value="{s}"{" selected" if s == view.service_id else ""}>{s}</option>'
        for s in view.services
    )
    return (
        f'<form method="get" action="{e(action)}"><label>Month<select name="month">{months}</select></label>'
        f'<label>Service<select name="service">{services}</select></label><button type="submit">Show</button>'
        "</form>"
    )


def _month_table(view: UsageView) -> str:
    head = "<tr><th>Service</th><th>Requests</th><th>GB sent</th><th>Budget</th><th>Budget used</th></tr>"
    body = []
    for row in view.rows:
        share = row.budget_share
        if share is None or row.budget is None:
            budget, used = "<td>none</td>", "<td>—</td>"
        else:
            width = min(share, 1.0) * 100
            over = " over" if share >= 1 else ""
            budget = f"<td>{format_volume(row.budget)}</td>"
            used = (
                f'<td data-budget-share="{share:.6f}"><span class="track"><span class="fill{over}" '
                f'style="width:{width:.2f}%"></span></span> {share:.1%}</td>'
            )
        body.append(
            f'<tr data-service="{row.service_id}"><td>{row.service_id}</td>'
            f'<td data-requests="{row.requests}">{row.requests:,}</td>'
            f'<td data-bytes-sent="{row.bytes_sent}">{format_volume(row.bytes_sent)}</td>{budget}{used}</tr>'
        )
    return f"<table data-month-table>{head}{''.join(body)}</table>"


def _chart(
    days: Sequence[DayTotals],
    name: str,
    value_of: Callable[[DayTotals], int],
    label: Callable[[int], str],
) -> str:
    """One bar per day on one scale, the largest value at :data:`CHART_HEIGHT` pixels."""
    e = html.escape
    largest = max(value_of(day) for day in days) or 1
    width = _LEFT + _BAR * len(days) + 10
    height = _TOP + CHART_HEIGHT + 22
    base = _TOP + CHART_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'data-chart="{name}" aria-label="{e(name)} per day">',
        f'<line x1="{_LEFT}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#9ca3af"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{e(label(largest))}</text>',
        f'<text x="{_LEFT - 6}" y="{base + 4}" text-anchor="end">0</text>',
    ]
    for index, day in enumerate(days):
        value = value_of(day)
        bar = value / largest * CHART_HEIGHT
        x = _LEFT + index * _BAR
        parts.append(
            f'<rect x="{x + 1}" y="{base - bar:.3f}" width="{_BAR - 2}" height="{bar:.3f}" fill="#2563eb" '
            f'data-day="{e(day.date)}" data-value="{value}"><title>{e(day.date)}: {e(label(value))}</title></rect>'
        )
        if day.date.endswith("-01"):
            parts.append(f'<text x="{x}" y="{base + 16}">{e(day.date[:7])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _revisions(view: UsageView) -> str:
    e = html.escape
    title = (
        f"<h2>Revisions of the last {REVISION_DAYS} days (<code>{e(str(view.revisions_table))}</code>)</h2>"
    )
    if view.revisions_problem is not None:
        return f'{title}<p class="empty">{e(view.revisions_problem)}</p>'
    if not view.revisions:
        return f"{title}<p>No counter was revised in the last {REVISION_DAYS} days.</p>"
    head = (
        '<tr><th>Revised at (UTC)</th><th>Service</th><th>Day</th><th class="text">Counter</th><th>Old</th>'
        '<th>New</th><th class="text">By</th></tr>'
    )
    rows = "".join(
        f'<tr><td class="day">{e(r.revised_at)}</td><td>{r.service_id}</td><td class="day">{e(r.date)}</td>'
        f'<td class="text">{e(r.counter)}</td><td>{r.old_value:,}</td><td>{r.new_value:,}</td>'
        f'<td class="text">{e(r.revised_by)}</td></tr>'
        for r in view.revisions
    )
    return f"{title}<table data-revisions>{head}{rows}</table>"
