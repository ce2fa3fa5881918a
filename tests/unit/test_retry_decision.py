"""The one retry decision: raise, or wait how long (the Retry-After cap and the retry budget included)."""

from __future__ import annotations

import pytest

from airflow_provider_zendrive.exceptions import (
    ZenDriveAuthError,
    ZenDriveError,
    ZenDriveRateLimitError,
    ZenDriveResponseError,
    ZenDriveUnavailableError,
)
from airflow_provider_zendrive.retry import Backoff, retry_delay

BACKOFF = Backoff(rng=lambda: 0.5)


@pytest.mark.parametrize(
    ("error", "attempt", "expected"),
    [
        (ZenDriveRateLimitError("429", retry_after=2.0), 0, 2.5),  # Retry-After plus half a base of jitter
        (ZenDriveRateLimitError("429"), 3, 4.0),  # no Retry-After: half of the 8 s ceiling
        (ZenDriveUnavailableError("timeout"), 0, 0.5),
        (ZenDriveUnavailableError("503", status_code=503, retry_after=1.0), 1, 1.5),
        (ZenDriveUnavailableError("501", status_code=501), 0, None),  # transient, but not worth it in-process
        (ZenDriveRateLimitError("429", retry_after=301.0), 0, None),  # longer than max_retry_after
        (ZenDriveRateLimitError("429", retry_after=1.0), 6, None),  # budget used up
        (ZenDriveAuthError("401", status_code=401), 0, None),
        (ZenDriveResponseError("bad"), 0, None),
        (ZenDriveError("new"), 0, None),
    ],
)
def test_retry_delay(error: ZenDriveError, attempt: int, expected: float | None) -> None:
    assert retry_delay(error, attempt, 6, BACKOFF) == expected
