"""The human summary: what a person reads in a chat, an email subject and body, or the task log."""

from __future__ import annotations

import datetime

import pytest

from airflow_provider_zendrive._outputs.summary import format_volume, usage_summary
from airflow_provider_zendrive.testing import DEMO_SECRET_KEY
from airflow_provider_zendrive.testing._data import window_stats

FIRST, LAST = datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)


def test_the_headline_and_the_body_carry_the_exact_numbers() -> None:
    stats = window_stats(1234, FIRST, LAST)
    summary = stats["summary"]
    text = usage_summary(stats, revised=2)
    headline, *body = text.splitlines()
    rate = 100 * summary["successful_requests"] / summary["total_requests"]
    assert headline == (
        f"ZenDRIVE service 1234, 2026-04-01 to 2026-04-30: {summary['total_requests']:,} requests, "
        f"{rate:.2f} % successful, {summary['bytes_sent'] / 1e9:,.1f} GB sent"
    )
    assert (
        f"Requests: {summary['total_requests']:,} ({summary['successful_requests']:,} successful" in body[0]
    )
    assert body[1] == (
        f"Volume: {summary['bytes_sent'] / 1e9:,.1f} GB sent, {format_volume(summary['bytes_received'])} received"
    )
    quiet = 30 - len(stats["daily"])
    assert body[2].startswith(f"Days without traffic: {quiet} of 30")
    assert body[3] == "Revised rows: 2 (numbers changed since an earlier pull)"
    assert DEMO_SECRET_KEY not in text


def test_gib_on_request_and_no_revisions_line_without_a_table() -> None:
    stats = window_stats(1234, FIRST, FIRST)
    text = usage_summary(stats, unit="GiB")
    assert f"{stats['summary']['bytes_sent'] / 2**30:,.1f} GiB sent" in text
    assert ", 2026-04-01:" in text  # a one-day window names its day once
    assert "Revised" not in text
    assert usage_summary(stats, revised=0).splitlines()[-1] == "Revised rows: 0"


def test_a_window_without_traffic_says_so_instead_of_dividing_by_zero() -> None:
    stats = window_stats(99, FIRST, datetime.date(2026, 4, 10), new=True)
    text = usage_summary(stats, revised=0)
    assert text.splitlines()[0] == "ZenDRIVE service 99, 2026-04-01 to 2026-04-10: 0 requests, 0.0 GB sent"
    assert (
        "Days without traffic: 10 of 10 (2026-04-01, 2026-04-02, 2026-04-03, 2026-04-04, 2026-04-05 and 5 more)"
        in text
    )
    assert text.splitlines()[-1] == "Revised rows: 0"


@pytest.mark.parametrize(
    ("size", "unit", "expected"),
    [
        (0, "GB", "0.0 GB"),
        (4_000_000, "GB", "0.004 GB"),
        (1_234_567_890_123, "GB", "1,234.6 GB"),
        (2**30, "GiB", "1.0 GiB"),
    ],
)
def test_volumes_have_units_and_separators(size: int, unit: str, expected: str) -> None:
    assert format_volume(size, unit) == expected  # type: ignore[arg-type]


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unit must be one of"):
        usage_summary(window_stats(1, FIRST, FIRST), unit="TB")  # type: ignore[arg-type]
