"""Which days a run pulls: one pure function, every rule and its reason."""

from __future__ import annotations

import datetime

import pytest

from airflow_provider_zendrive._client.windows import DateWindow, choose_window
from airflow_provider_zendrive.exceptions import ZenDriveInputError

UTC = datetime.UTC
D = datetime.date


def at(day: int, hour: int = 0, month: int = 5) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, tzinfo=UTC)


def test_explicit_dates_win_over_the_run() -> None:
    window, why = choose_window(
        from_date="2026-03-01", to_date="2026-03-02", data_interval_start=at(1), data_interval_end=at(2)
    )
    assert window == DateWindow(D(2026, 3, 1), D(2026, 3, 2))
    assert "from_date / to_date" in why


def test_a_data_interval_pulls_its_days_end_excluded() -> None:
    window, why = choose_window(from_date="", to_date=" ", data_interval_start=at(1), data_interval_end=at(8))
    assert window == DateWindow(D(2026, 5, 1), D(2026, 5, 7))
    assert "data interval" in why


def test_a_short_interval_still_pulls_its_first_day() -> None:
    window, _ = choose_window(
        from_date=None, to_date=None, data_interval_start=at(1, 6), data_interval_end=at(1, 12)
    )
    assert window == DateWindow(D(2026, 5, 1), D(2026, 5, 1))


def test_an_empty_interval_pulls_the_day_before_the_logical_date() -> None:
    window, why = choose_window(
        from_date=None, to_date=None, data_interval_start=at(2), data_interval_end=at(2), logical_date=at(2)
    )
    assert window == DateWindow(D(2026, 5, 1), D(2026, 5, 1))
    assert "day before" in why


def test_no_logical_date_means_the_api_default() -> None:
    assert choose_window(from_date=None, to_date=None) == (None, "because the run has no logical date")


def test_the_first_day_of_the_calendar_has_no_day_before() -> None:
    first = datetime.datetime(1, 1, 1, tzinfo=UTC)
    with pytest.raises(ZenDriveInputError, match="calendar"):
        choose_window(from_date=None, to_date=None, logical_date=first)


def test_lookback_starts_the_chosen_window_earlier() -> None:
    window, why = choose_window(
        from_date=None,
        to_date=None,
        data_interval_start=at(2),
        data_interval_end=at(2),
        logical_date=at(2),
        lookback_days=3,
    )
    assert window == DateWindow(D(2026, 4, 28), D(2026, 5, 1))
    assert "lookback_days" in why
    explicit, _ = choose_window(from_date="2026-05-10", to_date="2026-05-12", lookback_days=2)
    assert explicit == DateWindow(D(2026, 5, 8), D(2026, 5, 12))


def test_lookback_on_the_api_default_makes_it_explicit() -> None:
    window, why = choose_window(from_date=None, to_date=None, lookback_days=5, today=D(2026, 5, 31))
    assert window == DateWindow(D(2026, 4, 26), D(2026, 5, 31))
    assert "API default" in why


def test_lookback_counts_against_the_longest_pull() -> None:
    with pytest.raises(ZenDriveInputError, match="max_pull_days"):
        choose_window(from_date="2026-05-01", to_date="2026-05-01", lookback_days=400, max_days=366)
