"""The ZenDRIVE usage-statistics hook."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook

from airflow_provider_zendrive._client import DEFAULT_CONN_ID
from airflow_provider_zendrive._client.api import StatsCall, send_with_retries
from airflow_provider_zendrive._client.models import DailyUsage, UsageStats, UsageSummary, merge_stats
from airflow_provider_zendrive._client.pacing import pace_for
from airflow_provider_zendrive._client.retry import Backoff
from airflow_provider_zendrive._client.settings import ZenDriveSettings
from airflow_provider_zendrive._client.transport import SyncSession, open_sync_client, ssl_context
from airflow_provider_zendrive._client.windows import (
    LONGEST_PULL_DAYS,
    DateLike,
    DateWindow,
    window_from_dates,
)
from airflow_provider_zendrive._text import plural
from airflow_provider_zendrive.exceptions import (
    ZenDriveError,
    ZenDriveInputError,
    ZenDriveServiceInactiveError,
)

if TYPE_CHECKING:
    import httpx

# The response types and the window type are re-exported here, next to the hook that takes and returns them.
__all__ = ["DailyUsage", "DateWindow", "UsageStats", "UsageSummary", "ZenDriveStatsHook"]


class ZenDriveStatsHook(BaseHook):
    """
    Read ZenDRIVE S3 Access usage statistics.

    The connection's login is the access key and its password the secret key. The host is optional: empty
    for the documented endpoint, a bare hostname (``https`` and the documented path implied), or a full
    ``https://`` URL. Extras: ``timeout`` (seconds, default 30), ``verify`` (true, false or a CA bundle path,
    default true) and ``max_retries`` (default 6).

    Requests are POSTs over HTTPS only, sent with a blocking ``httpx.Client`` (:meth:`get_conn`); redirects are
    never followed; each attempt ends within ``timeout`` seconds and reads at most 4 MiB (see
    :mod:`airflow_provider_zendrive._client.transport`). 429, 5xx, timeouts and connection errors are retried
    in-process (see :mod:`airflow_provider_zendrive._client.retry`); other errors raise at once. A 429's
    ``Retry-After`` holds every caller of the same key in the process, other hooks and threads included (see
    :mod:`airflow_provider_zendrive._client.pacing`).

    :param zendrive_conn_id: the Airflow connection to use.
    :param max_retries: in-process retries per request, instead of the connection's extra ``max_retries``:
        pollers that wait on their own schedule (the deferrable sensor's first poke) pass 0 for one attempt.
    """

    conn_name_attr = "zendrive_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "zendrive"
    hook_name = "ZenDRIVE"

    #: Backoff rules for in-process retries.
    backoff: ClassVar[Backoff] = Backoff()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """
        The connection form's labels, placeholders and hidden fields, for Airflow 3.1.

        Airflow 3.2 and later read them from the provider info (``ui-field-behaviour``) without calling this;
        3.1 only asks the hook. Declared once, in
        :func:`~airflow_provider_zendrive.get_provider_info.get_provider_info`.
        """
        from airflow_provider_zendrive.get_provider_info import get_provider_info

        (conn_type,) = get_provider_info()["connection-types"]
        behaviour = conn_type["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    def __init__(
        self, zendrive_conn_id: str = default_conn_name, *, max_retries: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if max_retries is not None and (
            isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
        ):
            raise ZenDriveInputError(f"max_retries must be an integer >= 0 or None, got {max_retries!r}.")
        self.zendrive_conn_id = zendrive_conn_id
        self.max_retries = max_retries
        self._sleep: Callable[[float], None] = time.sleep

    @cached_property
    def settings(self) -> ZenDriveSettings:
        """The connection, read and validated once (no request is made)."""
        settings = ZenDriveSettings.from_connection(self.get_connection(self.zendrive_conn_id))
        _mask(settings.secret_key)
        if self.max_retries is not None:
            settings = dataclasses.replace(settings, max_retries=self.max_retries)
        return settings

    def get_conn(self) -> httpx.Client:
        """
        Return a new ``httpx.Client`` with the provider's headers, TLS settings and timeout, no redirects and no
        compression: the client every pull of this hook sends with, for ad-hoc calls too; the caller closes it.
        """
        return open_sync_client(self.settings, ssl_context(self.settings.verify))

    def get_stats(
        self,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        *,
        max_pull_days: int = LONGEST_PULL_DAYS,
    ) -> UsageStats:
        """
        Fetch usage statistics for an inclusive window of UTC dates.

        With neither bound the API's default applies (the last 30 days). With one bound the other is filled in
        as the server would (``to`` = today UTC, ``from`` = ``to`` - 30 days). Windows longer than 366 days are
        fetched in consecutive chunks, oldest first, over one HTTP session, and merged: ``daily`` concatenated,
        additive totals summed, ``success_rate`` recomputed, and ``summary.unique_ips`` set to None, because
        distinct-IP counts of separate windows cannot be added.

        :param from_date: first day: a date, datetime (its UTC date), pendulum object or ``"YYYY-MM-DD"``.
        :param to_date: last day, included; same forms as ``from_date``.
        :param max_pull_days: the longest window accepted, 3,660 days (ten years, ten requests) by default: a
            longer one is usually a typo in a year. Raise it to pull a longer history on purpose.
        :return: the API's JSON shape: ``status, service_id, from, to, summary{...}, daily[...]``.
        :raises ZenDriveInputError: (a ``ValueError``) on unparsable dates, ``from_date > to_date`` or a window
            longer than ``max_pull_days``, before any request.
        """
        return self.get_window_stats(window_from_dates(from_date, to_date, max_days=max_pull_days))

    def get_window_stats(self, window: DateWindow | None) -> UsageStats:
        """
        Fetch usage statistics for a window already resolved and checked (the operator's
        :meth:`~airflow_provider_zendrive.operators.zendrive.ZenDriveStatsOperator.resolve_window`), as
        :meth:`get_stats` does once it has parsed its dates.

        :param window: the inclusive window of UTC dates, or None for the API's default (the last 30 days).
        :return: the API's JSON shape, chunks merged.
        """
        chunks = window.chunks() if window is not None else [None]
        if window is not None and len(chunks) > 1:
            self.log.info(
                "Window %s has %s: fetching %d chunks.", window, plural(window.days, "day"), len(chunks)
            )
        results = self._fetch(chunks)
        if window is None:
            return results[0]
        return merge_stats(results, window.start, window.end)

    def is_service_active(self) -> bool:
        """
        Tell whether the service is active: True on 200, False on 403 (suspended or cancelled).

        Asks for a one-day window (today, UTC). Every other outcome raises.
        """
        try:
            self._fetch([DateWindow.today()])
        except ZenDriveServiceInactiveError:
            return False
        return True

    def test_connection(self) -> tuple[bool, str]:
        """
        Check the keys and endpoint for the UI's Test button and ``airflow connections test``.

        Succeeds only when a pull would: the keys are accepted and the service is active. A suspended service
        fails the test (every pull would fail with 403), with a message that says the keys themselves work.
        Messages say "this connection", not the temporary id Airflow gives the connection under test.
        """
        try:
            active = self.is_service_active()
        except ZenDriveError as exc:
            return False, self._for_this_connection(exc.message)
        url = self.settings.url
        if active:
            return True, f"Connection works: the keys were accepted at {url} and the service is active."
        return False, (
            f"The keys were accepted at {url}, but the ZenDRIVE service is not active (403: suspended or "
            "cancelled): every pull fails until it is active again."
        )

    def _for_this_connection(self, message: str) -> str:
        conn_id = repr(self.zendrive_conn_id)
        return message.replace(f"Connection {conn_id}", "This connection").replace(
            f"connection {conn_id}", "this connection"
        )

    def _fetch(self, windows: Sequence[DateWindow | None]) -> list[UsageStats]:
        """
        POST each window in turn over one client (one TLS connection), each with its retries, in the pace the
        other callers of this key in the process know (see :func:`~airflow_provider_zendrive._client.api.send_with_retries`).
        """
        settings = self.settings
        pace = pace_for(settings)
        results = []
        with SyncSession(self.get_conn(), settings) as session:
            for window in windows:
                call = StatsCall(settings, window, backoff=self.backoff, log=self.log)
                with pace.turn() as turn:
                    results.append(send_with_retries(call, session.send, turn, sleep=self._sleep))
        return results


def _mask(secret: str) -> None:
    """Register the secret with Airflow's secrets masker, so no task log line can show it."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
