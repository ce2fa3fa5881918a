"""
The trigger behind the deferrable :class:`~airflow_provider_zendrive.sensors.zendrive.ZenDriveServiceActiveSensor`.

It polls the usage-statistics endpoint from the triggerer's event loop and shares everything with the sync hook:
:class:`~airflow_provider_zendrive._client.settings.ZenDriveSettings` reads and validates the connection (HTTPS only,
TLS verification, timeout, secret redaction), :mod:`~airflow_provider_zendrive._client.transport` sends (``httpx``, a
dependency of every Airflow 3 task SDK; every attempt bounded in time and size) and
:func:`~airflow_provider_zendrive._client.api.single_attempt` maps each answer to a result or an error.

The triggers of one key on the triggerer's event loop share one poll
(:class:`~airflow_provider_zendrive._client.polling.SharedPoll`): one request per interval for all of them, each
answer decided by every trigger with its own connection. Every outcome that is not "active yet" waits
``poke_interval`` before the trigger takes the next answer (at least ``Retry-After`` on a 429), so a suspended
service costs one request per interval, never a hot loop. The sensor's poke asks the same
:func:`~airflow_provider_zendrive._client.retry.poll_again_after`:

* 200: yields ``{"status": "active"}``;
* 403 (service not active): logs at INFO, takes the next answer ``poke_interval`` later;
* 429: one WARNING, takes the next answer ``max(poke_interval, Retry-After)`` later;
* 5xx, timeout, connection error: one WARNING, takes the next answer ``poke_interval`` later;
* 401, 400, other 4xx, a redirect, a bad 200 body, a TLS error or an unusable connection: yields
  ``{"status": "error", "message": ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_zendrive._client import DEFAULT_CONN_ID
from airflow_provider_zendrive._client.api import single_attempt
from airflow_provider_zendrive._client.retry import poll_again_after
from airflow_provider_zendrive._client.settings import ZenDriveSettings
from airflow_provider_zendrive._compat import aextra_dejson, amask_secret
from airflow_provider_zendrive.exceptions import ZenDriveError, ZenDriveServiceInactiveError

if TYPE_CHECKING:
    import ssl

    from airflow_provider_zendrive._client.polling import PollResult

__all__ = ["ZenDriveServiceActiveTrigger"]


class ZenDriveServiceActiveTrigger(BaseTrigger):
    """
    Poll ZenDRIVE asynchronously until the service is active, then fire exactly one event.

    The event is ``{"status": "active"}`` once the API answers 200, or ``{"status": "error", "message": ...}``
    for an outcome that waiting cannot fix (rejected keys, a refused request, a TLS failure, an unusable
    connection). The message never contains the secret key. The deferral's own timeout (set by the sensor)
    bounds how long it polls.

    :param zendrive_conn_id: the Airflow connection to use.
    :param poke_interval: seconds to wait after every poll that did not find the service active (the shared poll
        of the key runs at the shortest interval among its triggers).
    :param first_poll_after: seconds to wait before the first poll. The sensor passes its ``poke_interval``: it
        has just poked, so an immediate poll would spend a request on the answer it already has (and a trigger
        that fires within a second or two of the deferral can meet an Airflow race, apache/airflow#71580).
    """

    def __init__(
        self,
        zendrive_conn_id: str = DEFAULT_CONN_ID,
        poke_interval: float = 60.0,
        first_poll_after: float = 0.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not poke_interval > 0:
            raise ValueError(f"poke_interval must be a positive number of seconds, got {poke_interval!r}")
        if not 0 <= first_poll_after < float("inf"):
            raise ValueError(f"first_poll_after must be a number of seconds >= 0, got {first_poll_after!r}")
        self.zendrive_conn_id = zendrive_conn_id
        self.poke_interval = float(poke_interval)
        self.first_poll_after = float(first_poll_after)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the JSON-serialisable keyword arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "zendrive_conn_id": self.zendrive_conn_id,
                "poke_interval": self.poke_interval,
                "first_poll_after": self.first_poll_after,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait on the key's shared poll until active or a final error; yield one event."""
        try:
            settings = await self._settings()
        except ZenDriveError as exc:
            yield _error(exc.message)
            return
        # The transport and the poll load when a trigger runs, not when the module is imported (the sensor's
        # module imports this one to defer, and parse time stays free of the HTTP stack).
        from airflow_provider_zendrive._client.transport import ssl_context

        try:  # loading a CA bundle reads files: keep it off the event loop
            context = await asyncio.to_thread(ssl_context, settings.verify)
        except (OSError, ValueError) as exc:
            yield _error(settings.redact(f"Cannot load the CA bundle {settings.verify!r}: {exc}"))
            return
        yield await self._wait(settings, context)  # the poll is left before the event is handed over

    async def _wait(self, settings: ZenDriveSettings, context: ssl.SSLContext) -> TriggerEvent:
        """Take the shared poll's answers at this trigger's own pace until one ends the wait."""
        from airflow_provider_zendrive._client import polling

        with polling.shared_poll(settings, context).waiter(
            self.poke_interval, self.first_poll_after
        ) as waiter:
            while True:
                event = self._event_for(settings, await waiter.next())
                if event is not None:
                    return event

    async def _settings(self) -> ZenDriveSettings:
        """Read the connection without blocking the event loop, validate it and mask the secret."""
        try:
            conn = await BaseHook.aget_connection(self.zendrive_conn_id)
        except AirflowException as exc:  # AirflowNotFoundException and friends: no secret in the message
            raise ZenDriveError(
                f"Cannot read connection {self.zendrive_conn_id!r}: {type(exc).__name__}: {exc}"
            ) from None
        settings = ZenDriveSettings.from_connection(conn, extra=await aextra_dejson(conn))
        await amask_secret(settings.secret_key)
        return settings

    def _event_for(self, settings: ZenDriveSettings, result: PollResult) -> TriggerEvent | None:
        """
        What one poll's answer means for this trigger, decided with its own connection (its messages name it):
        the event that ends the wait, or None after one log line.

        One attempt per poll (:func:`~airflow_provider_zendrive._client.api.single_attempt`): the poll's schedule
        does the waiting, and :func:`~airflow_provider_zendrive._client.retry.poll_again_after` decides whether
        waiting can help.
        """
        outcome = single_attempt(settings, result.window, result.answer)
        if isinstance(outcome, ZenDriveError):
            wait = poll_again_after(outcome, self.poke_interval)
            if wait is None:  # final: waiting cannot fix it
                return _error(settings.redact(outcome.message))
            if isinstance(outcome, ZenDriveServiceInactiveError):
                self.log.info("The ZenDRIVE service is not active (403); polling again in %.1f s.", wait)
            else:
                self.log.warning("%s Polling again in %.1f s.", settings.redact(outcome.message), wait)
            return None
        self.log.info("The ZenDRIVE service is active.")
        return TriggerEvent({"status": "active"})  # type: ignore[no-untyped-call]


def _error(message: str) -> TriggerEvent:
    return TriggerEvent({"status": "error", "message": message})  # type: ignore[no-untyped-call]
