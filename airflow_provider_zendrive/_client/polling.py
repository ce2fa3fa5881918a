"""
Coalesced polling: the triggers of one key on one event loop share one poll (:class:`SharedPoll`).

The deferrable sensor's triggers for one key on
one event loop (the triggerer's) share one poll: one asyncio task, started by the first waiter and cancelled
when the last one leaves, with at most one request in flight. It polls when the earliest waiter is due: at its
``first_poll_after`` after joining, then at the shortest ``poke_interval`` among the waiters (longer after a
429's Retry-After), and hands every answer to every waiter that joined before it was sent. An answer that ends
the wait (active, or a final error) reaches each waiter at once, or at the end of its own ``first_poll_after``;
any other answer reaches a waiter when its own interval comes up (a waiter with a longer interval takes the
latest answer then, without a request of its own). Each waiter decides what the answer means with its own
connection (:func:`~airflow_provider_zendrive._client.api.single_attempt`), so its messages name its own
connection, and logs from its own task. Polls of different keys, connections with another secret, ``verify``
or ``timeout``, and different event loops are independent. Every poll takes its turn in the key's
shared 429 knowledge (:mod:`~airflow_provider_zendrive._client.pacing`), like the hook's requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from airflow_provider_zendrive._client.api import Failure, Reply, single_attempt
from airflow_provider_zendrive._client.pacing import KeyId, Turn, pace_for
from airflow_provider_zendrive._client.retry import poll_again_after
from airflow_provider_zendrive._client.transport import open_client, send
from airflow_provider_zendrive._client.windows import DateWindow
from airflow_provider_zendrive.exceptions import ZenDriveError

if TYPE_CHECKING:
    import ssl

    import httpx

    from airflow_provider_zendrive._client.settings import ZenDriveSettings

__all__ = ["PollKey", "PollResult", "SharedPoll", "Waiter", "shared_poll"]


@dataclass(frozen=True)
class PollResult:
    """
    One shared poll: what was asked, what came back, and what it means for the schedule.

    :param window: the window asked for (today, UTC, when it was sent).
    :param answer: the transport's answer, decided by each waiter with its own connection.
    :param sent: ``time.monotonic()`` when it was sent.
    :param received: ``time.monotonic()`` when it was answered.
    :param verdict: ``"active"`` and ``"final"`` end the wait; ``"waiting"`` does not.
    :param min_wait: for ``"waiting"``: the least wait before the next poll (a 429's Retry-After, else 0).
    """

    window: DateWindow
    answer: Reply | Failure = field(repr=False)
    sent: float
    received: float
    verdict: Literal["active", "waiting", "final"]
    min_wait: float = 0.0


class Waiter:
    """
    One trigger's place in a shared poll: ``await waiter.next()`` returns each answer meant for it.

    :param poke_interval: seconds between the answers it takes.
    :param first_poll_after: seconds before the first answer it takes (and before anything ends its wait).
    :param now: ``time.monotonic()`` when it joined: answers to polls sent before are not for it.
    """

    def __init__(self, poke_interval: float, first_poll_after: float, now: float) -> None:
        self.poke_interval = poke_interval
        self.joined = now
        self.first_due = now + first_poll_after
        self.due = self.first_due  # when it takes its next answer
        self.pending: PollResult | None = None  # the latest "waiting" answer it has not taken yet
        self.ending: PollResult | None = None  # the answer that ends its wait
        self.ended = False
        self._inbox: asyncio.Queue[PollResult | Exception] = asyncio.Queue()

    def fail(self, error: Exception) -> None:
        """End the wait with ``error``: :meth:`next` raises it (the poll itself broke)."""
        self._inbox.put_nowait(error)

    async def next(self) -> PollResult:
        """The next answer meant for this waiter."""
        item = await self._inbox.get()
        if isinstance(item, Exception):
            raise item
        return item

    def offer(self, result: PollResult) -> None:
        """Take note of a poll's answer, if it is for this waiter (sent after it joined, before its wait ended)."""
        if result.sent < self.joined or self.ending is not None:
            return
        if result.verdict == "waiting":
            self.pending = result
        else:
            self.ending = result

    def deliver(self, now: float) -> None:
        """Hand over the answer that is due at ``now``, if any."""
        if self.ending is not None:
            if not self.ended and now >= self.first_due:
                self._inbox.put_nowait(self.ending)
                self.ended = True
        elif self.pending is not None and now >= self.due:
            self._inbox.put_nowait(self.pending)
            self.due = self.pending.received + max(self.poke_interval, self.pending.min_wait)
            self.pending = None

    def wants_poll_at(self) -> float | None:
        """When this waiter needs a fresh answer (None: it has one to take, or its wait has ended)."""
        return self.due if self.ending is None and self.pending is None else None

    def delivers_at(self) -> float | None:
        """When this waiter takes the answer it holds (None: nothing to hand over)."""
        if self.ending is not None:
            return None if self.ended else self.first_due
        return self.due if self.pending is not None else None


#: What one shared poll is for, on an event loop: the key, and the timeout of its requests.
PollKey: TypeAlias = tuple[KeyId, float]


class SharedPoll:
    """
    The one poll of a key on one event loop (see the module docstring); get it with :func:`shared_poll`.

    :param key: the key and the timeout.
    :param settings: the settings of the first waiter's connection: the request, its timeout and TLS.
    :param context: the TLS context built from them.
    :param registry: the event loop's polls, which this one leaves when its last waiter does.
    """

    def __init__(
        self,
        key: PollKey,
        settings: ZenDriveSettings,
        context: ssl.SSLContext,
        registry: dict[PollKey, SharedPoll],
    ) -> None:
        self._key = key
        self._settings = settings
        self._context = context
        self._registry = registry
        self._waiters: list[Waiter] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def waiter(self, poke_interval: float, first_poll_after: float) -> Iterator[Waiter]:
        """
        Join the poll for the ``with`` block; leaving it (an event, a cancellation) stops the poll if nobody
        else waits.

        :param poke_interval: seconds between the answers the waiter takes.
        :param first_poll_after: seconds before its first answer.
        """
        waiter = Waiter(poke_interval, first_poll_after, time.monotonic())
        self._waiters.append(waiter)
        if self._task is None:  # a task of its own: it logs for no trigger; no trigger's cancel reaches it
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"zendrive-poll {self._settings.url}", context=contextvars.Context()
            )
        self._changed.set()
        try:
            yield waiter
        finally:
            self._waiters.remove(waiter)
            if self._waiters:
                self._changed.set()
            else:
                self._stop()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._registry.get(self._key) is self:
            del self._registry[self._key]

    async def _run(self) -> None:
        pace = pace_for(self._settings)
        try:
            async with open_client(self._settings, self._context) as client:
                while True:
                    with pace.turn() as turn:
                        if not await self._until_due(turn):
                            return
                        result = await self._poll(client, turn)
                    for waiter in self._waiters:
                        waiter.offer(result)
        except Exception as exc:  # a bug must not leave every trigger of the key waiting in silence
            for waiter in self._waiters:
                waiter.fail(exc)
            self._task = None
            if self._registry.get(self._key) is self:
                del self._registry[self._key]

    async def _until_due(self, turn: Turn) -> bool:
        """
        Hand out the answers that are due until a poll is due and the key's pace lets it go (True), or until
        nobody waits any more (False).
        """
        while True:
            self._changed.clear()
            now = time.monotonic()
            for waiter in self._waiters:
                waiter.deliver(now)
            poll_at = min((t for w in self._waiters if (t := w.wants_poll_at()) is not None), default=None)
            if poll_at is not None and poll_at <= now:
                hold = turn.delay(now)
                if not hold:
                    return True
                poll_at = now + hold
            deliveries = [t for w in self._waiters if (t := w.delivers_at()) is not None]
            wake = min([*deliveries, *([] if poll_at is None else [poll_at])], default=None)
            if not self._waiters:
                return False
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wake is None else max(0.0, wake - now)):
                    await self._changed.wait()

    async def _poll(self, client: httpx.AsyncClient, turn: Turn) -> PollResult:
        window = DateWindow.today()
        sent = time.monotonic()
        answer = await send(client, self._settings, self._settings.encode_body(window))
        received = time.monotonic()
        error = self._error_of(window, answer)
        if error is None:
            turn.succeeded(received)
            return PollResult(window, answer, sent, received, "active")
        turn.throttled(received, error)
        min_wait = poll_again_after(error, 0.0)
        if min_wait is None:
            return PollResult(window, answer, sent, received, "final")
        return PollResult(window, answer, sent, received, "waiting", min_wait)

    def _error_of(self, window: DateWindow, answer: Reply | Failure) -> ZenDriveError | None:
        """The core's verdict on the answer (None: active), for the schedule; waiters decide their own."""
        outcome = single_attempt(self._settings, window, answer)
        return outcome if isinstance(outcome, ZenDriveError) else None


_polls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[PollKey, SharedPoll]] = (
    weakref.WeakKeyDictionary()
)
_polls_lock = threading.Lock()


def shared_poll(settings: ZenDriveSettings, context: ssl.SSLContext) -> SharedPoll:
    """
    The running event loop's poll of the settings' key (and timeout), created for its first waiter.

    :param settings: the waiter's connection settings.
    :param context: the TLS context built from them (used if this waiter starts the poll).
    """
    loop = asyncio.get_running_loop()
    with _polls_lock:  # the mapping of loops is shared between threads; each loop's polls are its own
        polls = _polls.setdefault(loop, {})
    key = (KeyId.of(settings), settings.timeout)
    poll = polls.get(key)
    if poll is None:
        poll = polls[key] = SharedPoll(key, settings, context, polls)
    return poll
