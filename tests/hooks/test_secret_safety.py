"""The secret key never shows up: not in any log line, exception text or chain, nor in what the hook returns."""

from __future__ import annotations

import json
import logging
import traceback
import urllib.parse
import uuid
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_zendrive.exceptions import ZenDriveError
from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook
from airflow_provider_zendrive.testing import Fault, ZenDriveEmulator

MakeHook = Callable[..., ZenDriveStatsHook]


def forms_of(secret: str) -> list[str]:
    """The secret as is, URL- and JSON-encoded, and every 16-character piece of it (a truncated leak)."""
    pieces = [secret[start : start + 16] for start in range(0, len(secret) - 15, 4)]
    return [secret, urllib.parse.quote(secret, safe=""), json.dumps(secret), *pieces]


def exception_chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


@pytest.fixture
def secret() -> str:
    # Characters that URL- and JSON-encode differently, to catch an encoded leak too.
    return f"S3cr3t/{uuid.uuid4().hex}+&"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 and requests included
    for name in ("urllib3", "requests", "airflow", "airflow.task"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def _valid_stats(emulator: ZenDriveEmulator) -> dict[str, object]:
    import datetime

    return dict(emulator.expected_stats(datetime.date(2026, 1, 1), datetime.date(2026, 1, 31)))


def scenarios(emulator: ZenDriveEmulator, secret: str) -> dict[str, tuple[list[Fault], dict[str, str], str]]:
    """name -> (faults to inject, connection extras, which secret the connection uses)."""
    echo = json.dumps({"status": "error", "message": f"bad secret_key {secret}"}).encode()
    return {
        "401": ([], {}, "wrong"),
        "403": ([], {}, "right"),
        "400 echoing the secret": ([Fault(status=400, body=echo)], {}, "right"),
        "503 echoing the secret, retried out": (
            [Fault(status=503, body=echo)] * 3,
            {"max_retries": "2"},
            "right",
        ),
        "429 retried out": ([Fault.rate_limited("1")] * 2, {"max_retries": "1"}, "right"),
        "301 to a URL with the secret": (
            [Fault(status=301, headers={"Location": f"{emulator.url}?k={urllib.parse.quote(secret)}"})],
            {},
            "right",
        ),
        "timeout": ([Fault(status=200, delay=0.6)] * 2, {"timeout": "0.2", "max_retries": "1"}, "right"),
        "dropped connection": ([Fault(drop=True)] * 2, {"max_retries": "1"}, "right"),
        "malformed body echoing the secret": (
            [Fault(status=200, body=b'{"secret": "' + secret.encode())],
            {},
            "right",
        ),
        "valid body with the secret as its status": (
            [Fault(status=200, body=json.dumps({**_valid_stats(emulator), "status": secret}).encode())],
            {},
            "right",
        ),
        "400 whose long message is cut inside the secret": (
            [Fault(status=400, body=json.dumps({"message": "x" * 170 + secret}).encode())],
            {},
            "right",
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "401",
        "403",
        "400 echoing the secret",
        "503 echoing the secret, retried out",
        "429 retried out",
        "301 to a URL with the secret",
        "timeout",
        "dropped connection",
        "malformed body echoing the secret",
        "valid body with the secret as its status",
        "400 whose long message is cut inside the secret",
    ],
)
def test_secret_absent_from_failures(
    name: str,
    secret: str,
    make_hook: MakeHook,
    zendrive_emulator: ZenDriveEmulator,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    zendrive_emulator.add_account("leak-test-key", secret, 4242)
    faults, extra, which = scenarios(zendrive_emulator, secret)[name]
    if name == "403":
        zendrive_emulator.suspend("leak-test-key")
    zendrive_emulator.inject(*faults)
    used_secret = secret if which == "right" else secret[::-1]
    hook = make_hook("leak-test-key", used_secret, **extra)

    with pytest.raises(ZenDriveError) as info:
        hook.get_stats("2026-01-01", "2026-01-31")

    # The request really carried the secret, so the scan below is meaningful.
    assert any(r.json and r.json.get("secret_key") == used_secret for r in zendrive_emulator.requests)
    texts = [everything_logged.text, *capfd.readouterr(), repr(hook.settings), repr(hook)]
    for exc in exception_chain(info.value):
        texts += [str(exc), repr(exc), repr(exc.args), *traceback.format_exception(exc)]
    blob = "\n".join(texts)
    assert everything_logged.records, "nothing was logged: the scan would prove nothing"
    for form in forms_of(used_secret):
        assert form not in blob


def test_secret_absent_from_success_and_test_connection(
    secret: str,
    make_hook: MakeHook,
    zendrive_emulator: ZenDriveEmulator,
    everything_logged: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    zendrive_emulator.add_account("leak-test-key", secret, 4242)
    hook = make_hook("leak-test-key", secret)

    stats = hook.get_stats("2023-01-01", "2024-12-31")
    ok, message = hook.test_connection()
    ok_bad, message_bad = make_hook("leak-test-key", secret + "x").test_connection()

    assert ok
    assert not ok_bad
    blob = "\n".join([json.dumps(stats), message, message_bad, everything_logged.text, *capfd.readouterr()])
    for form in [*forms_of(secret), *forms_of(secret + "x")]:
        assert form not in blob


def test_secret_is_registered_with_the_masker(
    secret: str, make_hook: MakeHook, zendrive_emulator: ZenDriveEmulator
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    zendrive_emulator.add_account("leak-test-key", secret, 4242)
    make_hook("leak-test-key", secret).get_stats("2026-01-01", "2026-01-01")

    assert secret not in str(redact(f"value={secret}"))
