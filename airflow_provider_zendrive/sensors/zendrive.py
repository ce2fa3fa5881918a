"""A sensor that waits for a ZenDRIVE service to be active (not suspended or cancelled)."""

from __future__ import annotations

import datetime
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, conf
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider_zendrive._client import DEFAULT_CONN_ID
from airflow_provider_zendrive._client.retry import poll_again_after
from airflow_provider_zendrive._compat import AirflowRescheduleException
from airflow_provider_zendrive.exceptions import ZenDriveError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

__all__ = ["ZenDriveServiceActiveSensor"]


class ZenDriveServiceActiveSensor(BaseSensorOperator):
    """
    Wait until the ZenDRIVE service behind a connection is active.

    Each poke asks the API for today's usage (a one-day window, UTC) and reads the status:

    * 200: active, the sensor succeeds;
    * 403 (suspended or cancelled): not yet, poke again after ``poke_interval``;
    * 429, 5xx, timeouts and connection errors: not yet, after the hook's in-process retries, with one
      WARNING; a ``Retry-After`` longer than ``poke_interval`` is waited out without sending (reschedule mode
      reschedules the task for then);
    * 401 (bad keys), 400 and other refusals, an unreadable 200 body, a TLS verification failure, or an
      invalid connection: the task fails
      at once (``AirflowFailException``, no retries), because waiting cannot fix them.

    ``mode="poke"`` and ``mode="reschedule"`` work as for any sensor, as do ``timeout`` and ``soft_fail``.

    With ``deferrable=True`` the sensor pokes once and, if the service is not active yet, defers to
    :class:`~airflow_provider_zendrive.triggers.zendrive.ZenDriveServiceActiveTrigger`, which polls every
    ``poke_interval`` from the triggerer without holding a worker slot; ``timeout`` bounds the deferral. The
    first synchronous poke (one attempt, without in-process retries) spares an already-active service the
    round trip through the triggerer.

    :param zendrive_conn_id: the Airflow connection to use.
    :param deferrable: defer to the triggerer between pokes; defaults to ``[operators] default_deferrable``.
    :param poke_interval: seconds (or a ``timedelta``) between pokes; also the trigger's polling interval.
    """

    template_fields = ("zendrive_conn_id",)
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        zendrive_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: timedelta | float = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.zendrive_conn_id = zendrive_conn_id
        self.deferrable = deferrable
        #: No request before this ``time.monotonic()`` (set from a 429's Retry-After).
        self._not_before = 0.0
        if deferrable and not self.poke_interval > 0:
            raise ValueError("A deferrable ZenDriveServiceActiveSensor needs a positive poke_interval.")

    @cached_property
    def hook(self) -> ZenDriveStatsHook:
        """
        The hook, built on first use (no connection is read before the task runs). A deferrable sensor's hook
        makes one attempt per poke: the trigger does the waiting, not a worker.
        """
        from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

        return ZenDriveStatsHook(
            zendrive_conn_id=self.zendrive_conn_id, max_retries=0 if self.deferrable else None
        )

    def poke(self, context: Context) -> bool:
        """
        Tell whether the service is active now; when deferrable and it is not, defer to the trigger.

        :raises AirflowFailException: on an error that waiting cannot fix, with the original message
            (``BaseSensorOperator`` turns it into a skip with ``soft_fail`` or ``never_fail``).
        """
        if time.monotonic() < self._not_before:  # inside the server's Retry-After: it would only refuse again
            return False
        try:
            active = self.hook.is_service_active()
        except ZenDriveError as exc:
            wait = poll_again_after(exc, self.poke_interval)
            if wait is None:  # final unless the tree says otherwise
                raise AirflowFailException(exc.message) from exc
            if self.deferrable:
                self.log.warning("%s %s", exc.message, self._next_step())
                self._defer(first_poll_after=wait)
            if wait > self.poke_interval:
                self._wait_out_rate_limit(wait, exc.message)
            else:
                self.log.warning("%s %s", exc.message, self._next_step())
            return False
        if not active:
            self.log.info(
                "The ZenDRIVE service is not active (403: suspended or cancelled); %s",
                self._next_step().lower(),
            )
            if self.deferrable:
                self._defer(first_poll_after=self.poke_interval)
        return active

    def _next_step(self) -> str:
        """What happens after a poke that did not find the service active, for the log."""
        if self.deferrable:
            return f"Deferring to the triggerer, which polls every {self.poke_interval:.1f} s."
        return f"Poking again in {self.poke_interval:.1f} s."

    def _defer(self, first_poll_after: float) -> None:
        """
        Hand the wait to the trigger; its first poll comes ``first_poll_after`` seconds from now (the poke just
        made was the first poll; after a 429, the server's ``Retry-After`` when that is longer).
        """
        from airflow_provider_zendrive.triggers.zendrive import ZenDriveServiceActiveTrigger

        self.defer(
            trigger=ZenDriveServiceActiveTrigger(
                zendrive_conn_id=self.zendrive_conn_id,
                poke_interval=self.poke_interval,
                first_poll_after=first_poll_after,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def _wait_out_rate_limit(self, retry_after: float, message: str) -> None:
        """
        Send nothing more until the server's ``Retry-After`` has passed, however short ``poke_interval`` is.

        In reschedule mode the task is rescheduled for then (the worker slot is freed); in poke mode the pokes
        until then return False without a request.
        """
        if self.reschedule:
            when = datetime.datetime.now(datetime.UTC) + timedelta(seconds=retry_after)
            self.log.warning(
                "%s Rescheduling after the server's Retry-After of %.0f s.", message, retry_after
            )
            raise AirflowRescheduleException(when)  # type: ignore[no-untyped-call]
        self._not_before = time.monotonic() + retry_after
        self.log.warning("%s Sending nothing for the server's Retry-After of %.0f s.", message, retry_after)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """
        Finish after the trigger fired; anything but an "active" event fails the task.

        :param event: the trigger's payload: ``{"status": "active"}`` or ``{"status": "error", "message": ...}``.
        :raises AirflowFailException: on an "error" event (an error that waiting cannot fix).
        :raises AirflowException: on an event this sensor does not know (fails closed).
        """
        status = event.get("status") if isinstance(event, dict) else None
        if status == "active" and len(event or {}) == 1:
            self.log.info("The ZenDRIVE service is active.")
            return
        if status == "error" and isinstance(message := (event or {}).get("message"), str):
            raise AirflowFailException(message)
        raise AirflowException(
            f"Unexpected event from ZenDriveServiceActiveTrigger: {_short(event)}; expected "
            "{'status': 'active'} or {'status': 'error', 'message': ...}."
        )


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
