"""Odd and hostile input is refused early with a ZenDriveInputError (never a bare OverflowError or ValueError)."""

from __future__ import annotations

import datetime
import json
import pathlib

import pytest

from airflow_provider_zendrive._client.models import MAX_COUNT, check_window, parse_stats
from airflow_provider_zendrive._client.settings import MAX_TIMEOUT, _timeout, _verify, build_endpoint_url
from airflow_provider_zendrive._client.windows import LONGEST_PULL_DAYS, DateWindow, window_from_dates
from airflow_provider_zendrive.exceptions import ZenDriveInputError, ZenDriveResponseError, ZenDriveTLSError

TODAY = datetime.date(2026, 11, 25)


@pytest.mark.parametrize(
    ("from_date", "to_date"),
    [("1026-05-01", "2026-05-31"), ("0001-01-01", "9999-12-31"), ("2016-01-01", "2026-05-31")],
)
def test_absurd_spans_are_refused_before_sending(from_date: str, to_date: str) -> None:
    with pytest.raises(ZenDriveInputError, match="max_pull_days") as refused:
        window_from_dates(from_date, to_date, today=TODAY)
    assert "typo" in str(refused.value)


def test_a_long_history_is_allowed_on_purpose() -> None:
    window = window_from_dates("1990-01-01", "2026-05-31", today=TODAY, max_days=20_000)
    assert window is not None
    assert len(window.chunks()) == 37
    ten_years = window_from_dates(TODAY - datetime.timedelta(days=LONGEST_PULL_DAYS - 1), TODAY, today=TODAY)
    assert ten_years is not None
    assert len(ten_years.chunks()) == 10


@pytest.mark.parametrize(
    ("from_date", "to_date"),
    [(None, "0001-01-10"), ("9999-12-01", "9999-12-31"), ("9999-12-31", None)],
)
def test_calendar_edges_never_overflow(from_date: str | None, to_date: str | None) -> None:
    try:
        window = window_from_dates(from_date, to_date, today=TODAY)
    except ZenDriveInputError:
        return  # refused with a clear message: fine
    assert window is not None
    assert window.chunks()[-1].end == window.end


def test_chunks_end_on_the_last_day_of_the_calendar() -> None:
    window = DateWindow(datetime.date(9998, 1, 1), datetime.date(9999, 12, 31))
    assert [chunk.end for chunk in window.chunks()][-1] == datetime.date(9999, 12, 31)


@pytest.mark.parametrize("value", ["1e10", 1e10, "inf", "nan", 0, -1, "3600.5"])
def test_absurd_timeouts_are_refused(value: object) -> None:
    with pytest.raises(ZenDriveInputError, match="timeout"):
        _timeout(value, "zendrive_test")
    assert _timeout(MAX_TIMEOUT, "zendrive_test") == MAX_TIMEOUT


@pytest.mark.parametrize(
    ("host", "port", "words"),
    [
        ("https://[::1", None, "malformed"),
        ("https://exa\r\nmple.com/", None, "control characters"),
        ("exam\tple.com", None, "control characters"),
        ("https://example.com/", 0, "between 1 and 65535"),
        ("https://example.com:8443/", 443, "port field"),
        ("https://user:s3cr3t@[::1", None, "malformed"),
    ],
)
def test_bad_hosts_and_ports_are_refused(host: str, port: int | None, words: str) -> None:
    with pytest.raises(ZenDriveInputError, match=words) as refused:
        build_endpoint_url(host, port)
    assert "s3cr3t" not in str(refused.value)


def test_a_port_field_that_agrees_with_the_url_is_fine() -> None:
    assert (
        build_endpoint_url("https://example.com:8443/", 8443)
        == "https://example.com:8443/zendrive-api/cdn-stats/"
    )
    assert build_endpoint_url("example.com", 8443) == "https://example.com:8443/zendrive-api/cdn-stats/"


@pytest.mark.parametrize("text", ["not a certificate\n", "", "-----BEGIN PRIVATE KEY-----\nAAAA\n"])
def test_a_ca_bundle_that_holds_no_certificate_is_a_tls_error_that_says_what_to_do(
    tmp_path: pathlib.Path, text: str
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(text)
    with pytest.raises(ZenDriveTLSError, match="extra 'verify'") as refused:
        _verify(str(bundle), "zendrive_test")
    assert str(bundle) in str(refused.value)
    assert "PEM" in str(refused.value)


def test_a_real_ca_bundle_is_kept_as_its_path() -> None:
    import certifi

    assert _verify(certifi.where(), "zendrive_test") == certifi.where()


def _body(**overrides: object) -> bytes:
    day = {
        "date": "2026-05-01",
        "total_requests": 1,
        "successful_requests": 1,
        "client_errors": 0,
        "auth_failures": 0,
        "bytes_sent": 5,
        "bytes_received": 0,
        "unique_ips": 1,
    }
    day.update(overrides)
    summary = {k: v for k, v in day.items() if k != "date"} | {"success_rate": 100.0}
    body = {"status": "ok", "service_id": 7, "from": "2026-05-01", "to": "2026-05-01", "summary": summary}
    return json.dumps({**body, "daily": [day]}).encode()


def test_counters_beyond_a_bigint_fail_validation() -> None:
    assert parse_stats(_body(bytes_sent=MAX_COUNT))["daily"][0]["bytes_sent"] == MAX_COUNT
    with pytest.raises(ZenDriveResponseError, match="BIGINT"):
        parse_stats(_body(bytes_sent=MAX_COUNT + 1))


def test_an_api_default_answer_longer_than_366_days_is_refused() -> None:
    stats = parse_stats(_body())
    stats["from"], stats["to"] = "1900-01-01", "2026-05-01"
    stats["daily"] = []
    with pytest.raises(ZenDriveResponseError, match="at most 366 days"):
        check_window(stats, None)
