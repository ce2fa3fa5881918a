"""The one retry decision: raise, or wait how long (the Retry-After cap and the retry budget included)."""

from __future__ import annotations

import pytest

from airflow_provider_zendrive._client.retry import Backoff, poll_again_after, retry_delay
from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveRateLimitError,
    ZenDriveRequestError,
    ZenDriveResponseError,
    ZenDriveServiceInactiveError,
    ZenDriveTLSError,
    ZenDriveUnavailableError,
)

BACKOFF = Backoff(rng=lambda: 0.5)


@pytest.mark.parametrize(
    ("error", "attempt", "expected"),
    [
        (ZenDriveRateLimitError("429", retry_after=2.0), 0, 2.5),  # Retry-After plus half a base of jitter
        (ZenDriveRateLimitError("429"), 3, 4.0),  # no Retry-After: half of the 8 s ceiling
        (ZenDriveUnavailableError("timeout"), 0, 0.5),
        (ZenDriveUnavailableError("503", status_code=503, retry_after=1.0), 1, 1.5),
        (ZenDriveRateLimitError("429", retry_after=301.0), 0, None),  # longer than max_retry_after
        (ZenDriveRateLimitError("429", retry_after=1.0), 6, None),  # budget used up
        (ZenDriveAuthError("401", status_code=401), 0, None),
        (ZenDriveResponseError("bad"), 0, None),
        (ZenDriveError("new"), 0, None),
    ],
)
def test_retry_delay(error: ZenDriveError, attempt: int, expected: float | None) -> None:
    wait = retry_delay(error, attempt, 6, BACKOFF)
    assert (None if wait is None else wait.seconds) == expected
    if wait is not None:
        assert wait.error is error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ZenDriveServiceInactiveError("403", status_code=403), 5.0),  # what a poller waits for
        (ZenDriveRateLimitError("429", retry_after=2.0), 5.0),  # shorter than the interval
        (ZenDriveRateLimitError("429", retry_after=30.0), 30.0),  # polling earlier would be refused again
        (ZenDriveRateLimitError("429"), 5.0),
        (ZenDriveUnavailableError("timeout"), 5.0),
        (ZenDriveAuthError("401", status_code=401), None),
        (ZenDriveRequestError("400", status_code=400), None),
        (ZenDriveTLSError("tls"), None),
        (ZenDriveResponseError("bad"), None),
        (ZenDriveError("a future class"), None),  # final unless it says otherwise
    ],
)
def test_poll_again_after(error: ZenDriveError, expected: float | None) -> None:
    assert poll_again_after(error, 5.0) == expected
