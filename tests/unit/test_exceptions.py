"""The exception tree says what a caller can do: transient errors wait, every other ZenDriveError is final."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_zendrive import exceptions
from airflow_provider_zendrive.exceptions import (
    ZenDriveError,
    ZenDriveRateLimitError,
    ZenDriveTransientError,
    ZenDriveUnavailableError,
)

TRANSIENT = {"ZenDriveTransientError", "ZenDriveRateLimitError", "ZenDriveUnavailableError"}


def test_only_the_rate_limit_and_unavailability_are_transient() -> None:
    classes = {name: getattr(exceptions, name) for name in exceptions.__all__}
    assert all(issubclass(cls, ZenDriveError) for cls in classes.values())
    assert {name for name, cls in classes.items() if issubclass(cls, ZenDriveTransientError)} == TRANSIENT


class _FutureError(ZenDriveError):
    """A class added later without saying it is transient."""


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (_FutureError("new"), "fail"),
        (ZenDriveError("base"), "fail"),
        (ZenDriveUnavailableError("503"), "default"),
        (ZenDriveRateLimitError("429", retry_after=3.0), "retry"),
        (RuntimeError("not ours"), "default"),
    ],
)
def test_the_retry_policy_decides_from_the_tree(error: BaseException, action: str) -> None:
    policy_module = pytest.importorskip("airflow_provider_zendrive.retry_policy")  # Airflow 3.3+

    decision = policy_module.ZenDriveRetryPolicy().evaluate(error, 1, 3)

    assert decision.action.value.lower() == action


def test_errors_survive_pickling_with_their_fields() -> None:
    error = ZenDriveRateLimitError("slow down", retry_after=7.5)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (type(copy), copy.message, copy.retry_after, copy.status_code) == (
        ZenDriveRateLimitError,
        "slow down",
        7.5,
        429,
    )
