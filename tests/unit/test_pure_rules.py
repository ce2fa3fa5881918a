"""
The pure rules the black-box tests reach only through the emulator or whole DAG runs, tested directly (as httpx
tests its URL model): Retry-After, status -> error, body decoding, the merge of chunks, formats and table names.
"""

from __future__ import annotations

import datetime
import gzip
import zlib

import pytest

from airflow_provider_zendrive._client.api import Failure, error_for_response
from airflow_provider_zendrive._client.models import ADDITIVE_FIELDS, merge_stats
from airflow_provider_zendrive._client.retry import parse_retry_after
from airflow_provider_zendrive._client.settings import ZenDriveSettings, build_endpoint_url
from airflow_provider_zendrive._client.transport import MAX_BODY_BYTES, decode_body
from airflow_provider_zendrive._outputs.rows import resolve_format
from airflow_provider_zendrive._outputs.tables import quote_table
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveInputError,
    ZenDriveRateLimitError,
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveServiceInactiveError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.testing._data import window_stats

SECRET = "s3cr3t-Key-Value-42"
SETTINGS = ZenDriveSettings(
    url="https://zendrive.test/zendrive-api/cdn-stats/", access_key="AK", secret_key=SECRET
)
NOW = datetime.datetime(2026, 10, 21, 7, 28, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("  120 ", 120.0),
        ("1.5", 1.5),
        ("-5", 0.0),  # never negative
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),  # an HTTP-date, against the given clock
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past
        ("inf", None),
        ("nan", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (401, {}, ZenDriveAuthError, None),
        (403, {}, ZenDriveServiceInactiveError, None),
        (429, {"Retry-After": "7"}, ZenDriveRateLimitError, 7.0),
        (429, {}, ZenDriveRateLimitError, None),
        (503, {"Retry-After": "3"}, ZenDriveUnavailableError, 3.0),
        (
            501,
            {"Retry-After": "3"},
            ZenDriveRequestError,
            None,
        ),  # final: the same request meets the same answer
        (302, {"Location": "https://elsewhere.test/"}, ZenDriveRequestError, None),
        (404, {}, ZenDriveRequestError, None),
        (418, {}, ZenDriveRequestError, None),
    ],
)
def test_error_for_response_maps_each_status_to_its_class(
    status: int, headers: dict[str, str], error: type[ZenDriveError], retry_after: float | None
) -> None:
    mapped = error_for_response(status, headers, b'{"message": "nope"}', SETTINGS)

    assert type(mapped) is error
    assert getattr(mapped, "retry_after", None) == retry_after
    assert f"({status}: nope)" in mapped.message or status == 302
    assert "POST https://zendrive.test/zendrive-api/cdn-stats/" in mapped.message


def test_error_for_response_redacts_the_secret_in_the_body_and_the_location() -> None:
    body = f'{{"message": "bad signature for {SECRET}"}}'.encode()
    mapped = [
        error_for_response(400, {}, body, SETTINGS),
        error_for_response(301, {"Location": f"https://x.test/?k={SECRET}"}, body, SETTINGS),
    ]

    for error in mapped:
        assert SECRET not in error.message
        assert SECRET[:8] not in repr(error)


def test_decode_body_undoes_gzip_and_both_deflates() -> None:
    data = b'{"status": "ok"}' * 100
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = raw_deflate.compress(data) + raw_deflate.flush()

    assert decode_body(data, "") == data
    assert decode_body(data, " Identity ") == data
    assert decode_body(gzip.compress(data), "gzip") == data
    assert decode_body(gzip.compress(data), "x-gzip") == data
    assert decode_body(zlib.compress(data), "deflate") == data
    assert decode_body(raw, "deflate") == data


@pytest.mark.parametrize(
    ("raw", "encoding", "kind", "words"),
    [
        (b"abc", "br", "connection error", "unsupported Content-Encoding"),
        (b"not gzip at all", "gzip", "connection error", "does not decode"),
        (b"not deflate", "deflate", "connection error", "does not decode"),
        (gzip.compress(bytes(MAX_BODY_BYTES + 1)), "gzip", "too large", "inflate beyond"),
    ],
)
def test_decode_body_refuses_what_it_cannot_or_must_not_inflate(
    raw: bytes, encoding: str, kind: str, words: str
) -> None:
    failure = decode_body(raw, encoding)

    assert isinstance(failure, Failure)
    assert failure.kind == kind
    assert words in failure.detail


def test_merge_stats_sums_the_counters_recomputes_the_rate_and_drops_unique_ips() -> None:
    first = window_stats(7, datetime.date(2025, 1, 1), datetime.date(2025, 12, 31))
    second = window_stats(7, datetime.date(2026, 1, 1), datetime.date(2026, 1, 31))

    merged = merge_stats([first, second], datetime.date(2025, 1, 1), datetime.date(2026, 1, 31))

    assert (merged["from"], merged["to"], merged["service_id"]) == ("2025-01-01", "2026-01-31", 7)
    assert merged["daily"] == first["daily"] + second["daily"]
    for name in ADDITIVE_FIELDS:
        assert merged["summary"][name] == first["summary"][name] + second["summary"][name]  # type: ignore[literal-required]
    total = merged["summary"]["total_requests"]
    assert merged["summary"]["success_rate"] == round(
        100 * merged["summary"]["successful_requests"] / total, 1
    )
    assert merged["summary"]["unique_ips"] is None


def test_merge_stats_refuses_chunks_of_different_services() -> None:
    day = datetime.date(2026, 1, 1)
    with pytest.raises(ZenDriveResponseError, match="different services"):
        merge_stats([window_stats(1, day, day), window_stats(2, day, day)], day, day)


@pytest.mark.parametrize(
    ("path", "explicit", "fmt"),
    [
        ("/data/usage.csv", None, "csv"),
        ("s3://bucket/usage.JSON", None, "json"),
        ("/data/usage.ndjson", None, "jsonl"),
        ("/data/usage.jsonl?versionId=3", None, "jsonl"),
        ("/data/usage.txt", "CSV", "csv"),
        ("/data/usage.csv", ".jsonl", "jsonl"),  # an explicit format wins over the suffix
    ],
)
def test_resolve_format(path: str, explicit: str | None, fmt: str) -> None:
    assert resolve_format(path, explicit) == fmt


@pytest.mark.parametrize(
    ("path", "explicit"), [("/data/usage", None), ("/data/usage.xlsx", None), ("/x.csv", "xml")]
)
def test_resolve_format_refuses_what_it_cannot_tell(path: str, explicit: str | None) -> None:
    with pytest.raises(ZenDriveInputError, match="format"):
        resolve_format(path, explicit)


@pytest.mark.parametrize(
    ("table", "quote", "quoted"),
    [
        ("usage", '"{}"', '"usage"'),
        ("billing.usage", '"{}"', '"billing"."usage"'),
        ("cat.billing.usage_2026", "`{}`", "`cat`.`billing`.`usage_2026`"),
    ],
)
def test_quote_table_quotes_each_part(table: str, quote: str, quoted: str) -> None:
    assert quote_table(table, quote) == quoted


@pytest.mark.parametrize(
    "table",
    [
        "",
        "a.b.c.d",
        'usage"; DROP TABLE x; --',
        "usage--",
        "us age",
        "billing.",
        ".usage",
        "usage`",
        "tab\x00le",
    ],
)
def test_quote_table_refuses_anything_but_plain_identifiers(table: str) -> None:
    with pytest.raises(ZenDriveInputError, match="not a valid table name"):
        quote_table(table)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "https://dashboard.clearstreamer.com/zendrive-api/cdn-stats/"),
        ("stats.example.com", "https://stats.example.com/zendrive-api/cdn-stats/"),
        ("https://stats.example.com/custom/path", "https://stats.example.com/custom/path/"),
    ],
)
def test_build_endpoint_url(host: str | None, url: str) -> None:
    assert build_endpoint_url(host) == url


@pytest.mark.parametrize(
    "host",
    [
        "http://stats.example.com/",
        "http:/stats.example.com",
        "https://user:pw@stats.example.com/",
        "https://x.test/?a=1",
    ],
)
def test_build_endpoint_url_refuses_what_is_not_plain_https(host: str) -> None:
    with pytest.raises(ZenDriveInputError):
        build_endpoint_url(host)
