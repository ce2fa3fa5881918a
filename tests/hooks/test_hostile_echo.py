"""
Hostile echoes: a server (or a proxy's error page) that sends the request back in any common encoding, for any
status, never gets a readable fragment of the secret key into an exception (its chain included), a log line or
the trigger's event.

The oracle is independent of the package's redaction: for each scenario the test knows which encoding it
injected, decodes every text it collected with that encoding's inverse, and looks for any 8-character run of
the secret in the plain and the decoded text.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
import re
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_zendrive.exceptions import ZenDriveError
from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator
from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

MakeHook = Callable[..., ZenDriveStatsHook]
ACCESS_KEY = "AKHOSTILE"
FRAGMENT = 8

#: Secrets whose characters encode differently in each scheme.
SECRETS = {
    "aws-style": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq9+Kx2Lm",
    "quotes-and-control": 'it\'s a "secret" k3y\twith\x01ctl-9f8e',
    "unicode": "sécrét-ключ-秘密-0123456789-ab",
}


def _php_json(text: str) -> str:
    return json.dumps(text)[1:-1].replace("/", "\\/")


def _unicode_unescape(text: str) -> str:
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeError:
        return text


def _base64_runs(text: str) -> str:
    decoded = []
    for run in re.findall(r"[A-Za-z0-9+/=]{12,}", text):
        try:
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
        except ValueError:
            continue
    return "\n".join(decoded)


#: encoding name -> (encode, decode): decode is the inverse the oracle applies to whatever text it collected.
ENCODINGS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "raw": (lambda s: s, lambda t: t),
    "json": (lambda s: json.dumps(s)[1:-1], lambda t: t.replace('\\"', '"').replace("\\\\", "\\")),
    "php-json": (_php_json, lambda t: t.replace("\\/", "/").replace('\\"', '"')),
    "json-ascii-u-escapes": (
        lambda s: json.dumps(s, ensure_ascii=True)[1:-1],
        _unicode_unescape,
    ),
    "html": (lambda s: html.escape(s, quote=True), html.unescape),
    "url-upper": (lambda s: urllib.parse.quote(s, safe=""), urllib.parse.unquote),
    "url-lower": (
        lambda s: re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(s, safe="")),
        urllib.parse.unquote,
    ),
    "url-plus": (urllib.parse.quote_plus, urllib.parse.unquote_plus),
    "python-repr": (repr, _unicode_unescape),
    "base64": (lambda s: base64.b64encode(s.encode()).decode(), _base64_runs),
    "url-of-json": (
        lambda s: urllib.parse.quote(json.dumps(s), safe=""),
        lambda t: urllib.parse.unquote(t).replace('\\"', '"'),
    ),
}


def shows_fragment(text: str, secret: str, decode: Callable[[str], str]) -> str | None:
    """The first 8-character run of the secret found in ``text`` or its decoding, else None."""
    views = [text, decode(text), text.casefold(), decode(text).casefold()]
    for start in range(len(secret) - FRAGMENT + 1):
        fragment = secret[start : start + FRAGMENT]
        for view in views:
            if fragment in view or fragment.casefold() in view:
                return fragment
    return None


def chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def faults_for(status: int, echoed: str) -> list[Fault]:
    """A response of ``status`` that carries ``echoed`` where that status's text lands."""
    if status == 302:
        # Raw UTF-8 bytes on the wire: the header value is sent as Latin-1 code points.
        location = f"https://elsewhere.example/?echo={echoed}".encode().decode("latin-1")
        return [Fault(status=302, headers={"Location": location})] * 2  # a retry (h11 refuses control chars)
    if status == 200:
        body = json.dumps({"status": echoed, "service_id": 1}).encode()
        return [Fault(status=200, body=body)]
    body = json.dumps({"status": "error", "message": f"you sent secret_key={echoed}"}).encode()
    return [Fault(status=status, body=body, headers={"Retry-After": "0"})] * 2


def collected_text(error: BaseException, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for exc in chain(error):
        parts += [str(exc), repr(exc), getattr(exc, "message", ""), getattr(exc, "server_message", "")]
    parts.append("".join(traceback.format_exception(error)))
    parts.append(json.dumps(logs, default=str))
    parts.append(caplog.text)
    return "\n".join(parts)


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 503, 302, 200])
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("secret_name", sorted(SECRETS))
def test_hook_never_shows_a_fragment_of_an_echoed_secret(
    make_hook: MakeHook,
    zendrive_emulator: ZenDriveEmulator,
    logs: list[dict[str, Any]],
    everything_logged: pytest.LogCaptureFixture,
    secret_name: str,
    encoding: str,
    status: int,
) -> None:
    secret = SECRETS[secret_name]
    encode, decode = ENCODINGS[encoding]
    zendrive_emulator.add_account(ACCESS_KEY, secret, 4321)
    zendrive_emulator.inject(*faults_for(status, encode(secret)))
    hook = make_hook(ACCESS_KEY, secret, max_retries="1")

    with pytest.raises(ZenDriveError) as raised:
        hook.get_stats("2026-05-01", "2026-05-02")

    assert zendrive_emulator.requests, "the request must have been sent"
    leaked = shows_fragment(collected_text(raised.value, logs, everything_logged), secret, decode)
    assert leaked is None, f"{leaked!r} of the secret shows after a {status} echoing it as {encoding}"


@pytest.mark.parametrize("secret_name", sorted(SECRETS))
def test_a_secret_straddling_the_scanned_part_of_a_body_is_not_shown(
    make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator, secret_name: str
) -> None:
    secret = SECRETS[secret_name]
    zendrive_emulator.add_account(ACCESS_KEY, secret, 4321)
    for padding in (4060, 4090, 16 * 1024 - 12):
        zendrive_emulator.inject(Fault(status=400, body=b" " * padding + secret.encode() + b" trailing"))
        with pytest.raises(ZenDriveError) as raised:
            make_hook(ACCESS_KEY, secret).get_stats("2026-05-01", "2026-05-02")
        text = "\n".join(str(exc) + repr(exc) for exc in chain(raised.value))
        assert shows_fragment(text, secret, lambda t: t) is None, padding


@pytest.mark.parametrize("encoding", ["php-json", "html", "url-lower", "python-repr", "base64"])
@pytest.mark.parametrize("status", [400, 503])
def test_trigger_events_and_logs_never_show_an_echoed_secret(
    zendrive_emulator: ZenDriveEmulator,
    set_connection: Callable[..., str],
    logs: list[dict[str, Any]],
    capfd: pytest.CaptureFixture[str],
    encoding: str,
    status: int,
) -> None:
    secret = SECRETS["aws-style"]
    encode, decode = ENCODINGS[encoding]
    zendrive_emulator.add_account(ACCESS_KEY, secret, 4321)
    faults = faults_for(status, encode(secret))[:1]
    # A 503 is retried by the trigger after poke_interval: end the test with a final echoing 400.
    zendrive_emulator.inject(*faults, *faults_for(400, encode(secret))[:1])
    conn_id = set_connection(zendrive_emulator.connection_uri(ACCESS_KEY, secret), conn_id="zendrive_hostile")
    trigger = ZenDriveServiceActiveTrigger(zendrive_conn_id=conn_id, poke_interval=0.05)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(asyncio.wait_for(first_event(), 15))

    assert event["status"] == "error"
    out, err = capfd.readouterr()
    text = json.dumps(event) + out + err + json.dumps(logs, default=str)
    assert shows_fragment(text, secret, decode) is None


@pytest.mark.slow
def test_a_real_task_log_never_shows_an_echoed_secret(
    airflow_runner: Any, zendrive_emulator: ZenDriveEmulator
) -> None:
    from pathlib import Path

    secret = SECRETS["aws-style"]
    zendrive_emulator.add_account(ACCESS_KEY, secret, 4321)
    # One body carrying the secret in every encoding at once, as a 503 (retried in-process) and then a 400.
    every_encoding = " ".join(encode(secret) for encode, _ in ENCODINGS.values())
    body = json.dumps({"status": "error", "message": every_encoding}).encode()
    zendrive_emulator.inject(
        Fault(status=503, body=body, headers={"Retry-After": "0"}), Fault(status=400, body=body)
    )
    dags = Path(__file__).parents[1] / "dags_for_tests" / "zendrive_stats_dags.py"
    env = {
        "AIRFLOW_CONN_ZENDRIVE_TEST": zendrive_emulator.connection_uri(ACCESS_KEY, secret),
        "ZD_TEST_FROM_DATE": "2026-05-01",
        "ZD_TEST_TO_DATE": "2026-05-02",
    }

    result = airflow_runner.run("zendrive_stats_daily", "2026-05-02", dags_folder=dags, env=env)

    assert result.task_states() == {"pull": "failed"}, result.output
    assert [r.status for r in zendrive_emulator.requests] == [503, 400]
    text = result.all_text()  # the task log files, the command's output and the whole metadata DB
    for _, decode in ENCODINGS.values():
        assert shows_fragment(text, secret, decode) is None
