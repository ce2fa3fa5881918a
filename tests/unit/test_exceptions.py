"""The exception tree says what a caller can do: transient errors wait, every other ZenDriveError is final."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_zendrive import exceptions
from airflow_provider_zendrive.exceptions import (
    ZenDriveError,
    ZenDriveFleetError,
    ZenDriveFleetRetryableError,
    ZenDriveRateLimitError,
    ZenDriveTransientError,
    ZenDriveUnavailableError,
)

TRANSIENT = {
    "ZenDriveTransientError",
    "ZenDriveRateLimitError",
    "ZenDriveUnavailableError",
    "ZenDriveFleetRetryableError",
}


def test_only_the_rate_limit_unavailability_and_retryable_fleets_are_transient() -> None:
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
        (ZenDriveFleetError("2 services failed", failures={"a": "401", "b": "403"}), "fail"),
        (ZenDriveFleetRetryableError("1 service failed", failures={"a": "503"}), "default"),
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


def test_a_fleet_error_survives_pickling_with_its_failures() -> None:
    error = ZenDriveFleetRetryableError(
        "1 service failed", failures={"zd_acme": "ZenDriveUnavailableError: 503"}
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert isinstance(copy, ZenDriveFleetError)
    assert isinstance(copy, ZenDriveTransientError)
    assert (copy.message, copy.failures, copy.retry_after) == (error.message, error.failures, None)
