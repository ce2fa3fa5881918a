"""
The task-level retry policy of the ZenDRIVE operator (Airflow 3.3+ ``airflow.sdk`` retry policies).

The hook already retries 429, 5xx, timeouts and connection errors in-process. What reaches the task is final
for that attempt, and this policy decides what Airflow does next:

======================================================  ===============================================
Exception                                               Decision
======================================================  ===============================================
``ZenDriveAuthError`` (401)                             fail now: retrying with the same keys cannot help
``ZenDriveRequestError`` (400, 404, 405, 3xx)           fail now
``ZenDriveResponseError`` (a 200 with a bad body)       fail now
``ZenDriveInputError`` (bad dates, format, connection)  fail now
``ZenDriveServiceInactiveError`` (403)                  fail now; wait with ZenDriveServiceActiveSensor
``ZenDriveTLSError`` (certificate not trusted)          fail now: fix the connection's ``verify``
any other ``ZenDriveError`` that is not transient        fail now (a new error class is final by default)
``ZenDriveRateLimitError`` (429)                        retry after ``Retry-After``, at most ``max_retry_delay``
``ZenDriveUnavailableError`` (5xx, timeouts)            the task's own ``retries`` / ``retry_delay``
anything else (database, storage errors, ...)           the task's own ``retries`` / ``retry_delay``
======================================================  ===============================================

A retry still counts against the task's ``retries``: with ``retries=0`` nothing is retried. A ``Retry-After``
longer than the task's ``max_retry_delay`` (one hour when the task sets none) is cut to it: a hostile or broken
server cannot park a task for a day, nor overflow Airflow's date arithmetic. Importing this
module raises ``ImportError`` on Airflow < 3.3, where the operator ships no policy and every failure uses the
task's ordinary retries.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_provider_zendrive.exceptions import ZenDriveError, ZenDriveRateLimitError, ZenDriveTransientError

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

__all__ = ["DEFAULT_RETRY_AFTER_CAP", "ZenDriveRetryPolicy", "retry_after_cap"]


#: The longest wait a ``Retry-After`` can schedule when the task sets no ``max_retry_delay``.
DEFAULT_RETRY_AFTER_CAP = datetime.timedelta(hours=1)


def retry_after_cap(context: Context | None) -> datetime.timedelta:
    """The task's ``max_retry_delay`` when it has one, else :data:`DEFAULT_RETRY_AFTER_CAP`."""
    task = context.get("task") if context else None
    cap = getattr(task, "max_retry_delay", None)
    if isinstance(cap, datetime.timedelta) and cap.total_seconds() > 0:  # BaseOperator stores a timedelta
        return cap
    return DEFAULT_RETRY_AFTER_CAP


class ZenDriveRetryPolicy(RetryPolicy):
    """Fail at once on errors a retry cannot fix; wait out a rate limit; leave the rest to ``retries``."""

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        """
        Decide what happens after ``exception``.

        :param exception: what the task raised.
        :param try_number: the current try (1-based).
        :param max_tries: the most tries the task has.
        :param context: the task context (unused).
        """
        if isinstance(exception, ZenDriveError) and not isinstance(exception, ZenDriveTransientError):
            return RetryDecision.fail(
                f"{type(exception).__name__} is not retryable: retrying with the same input cannot succeed."
            )
        if isinstance(exception, ZenDriveRateLimitError):
            if exception.retry_after is None:
                return RetryDecision.retry(reason="ZenDRIVE rate limit (429) without Retry-After.")
            cap = retry_after_cap(context)
            if exception.retry_after > cap.total_seconds():
                return RetryDecision.retry(
                    delay=cap,
                    reason=f"ZenDRIVE rate limit (429): the server asks for {exception.retry_after:,.0f} s; "
                    f"retrying after {cap.total_seconds():,.0f} s, the longest this task waits (max_retry_delay).",
                )
            return RetryDecision.retry(
                delay=datetime.timedelta(seconds=exception.retry_after),
                reason=f"ZenDRIVE rate limit (429): retrying after {exception.retry_after:.0f} s (Retry-After).",
            )
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        """The policy has no state: its class path is enough."""
        return {"__type": f"{type(self).__module__}.{type(self).__qualname__}"}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ZenDriveRetryPolicy:
        """Rebuild the policy from :meth:`serialize`'s output."""
        return cls()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
