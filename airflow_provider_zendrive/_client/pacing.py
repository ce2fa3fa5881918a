"""
Who else is waiting on this key: what the callers of one pair of keys share inside one process.

The rate limit is per key, and two places put many callers on one key in one process: the threads of a task
(a pool of hooks) and the triggerer (every deferred sensor of a deployment, on one event loop). This module is
the one place where they learn from each other. Callers are grouped by :class:`KeyId`: the endpoint URL, the
access key and a keyed hash of the secret and the ``verify`` setting, so connections with another secret or
another trust setting for the same access key never share a wait or an answer, and the secret is never held
here. Nothing crosses the process: across processes and machines the Airflow pool stays the bound.

**Shared 429 knowledge** (:class:`KeyPace`, thread-safe: any thread, any event loop). Every request of a key
takes a :class:`Turn` first:

* a 429 with ``Retry-After`` closes the key until then for every caller in the process, the one that got it
  included: nobody sends into a limit the process already knows about;
* then the callers that queued meanwhile are released, not all at once. As many go at once as the key let
  through in the Retry-After before it closed (its burst); the rest one at a time, the Retry-After spread over
  them (no slower than the key took requests before it closed). A lone caller goes after a random phase of up
  to a second instead, as the hook's own jitter did, so that the lone callers of several processes throttled
  in the same instant (one call per task) do not all come back in the same instant. Releases are not
  reserved: whoever asks first at a release time takes it, at the pace known then;
* a released request that still meets a 429 shows that the key refills more slowly than that. Its caller
  waits its own Retry-After and queues again, and the step becomes the measured refill interval (the time
  since the key was found empty over the released requests it let through since), a little faster, never
  faster than the spread that was refused. Such a 429 does not close the key again: stopping the release for a
  whole Retry-After each time would idle a key that refills several times a second, since servers round
  Retry-After up to whole seconds (measured in ``make bench``);
* once nobody has queued for a whole Retry-After, the key is open again.

A 429 without ``Retry-After`` teaches nothing: its caller backs off on its own
(:mod:`~airflow_provider_zendrive._client.retry`).

**Coalesced polling** (:class:`SharedPoll`, one event loop). The deferrable sensor's triggers for one key on
one event loop (the triggerer's) share one poll: one asyncio task, started by the first waiter and cancelled
when the last one leaves, with at most one request in flight. It polls when the earliest waiter is due: at its
``first_poll_after`` after joining, then at the shortest ``poke_interval`` among the waiters (longer after a
429's Retry-After), and hands every answer to every waiter that joined before it was sent. An answer that ends
the wait (active, or a final error) reaches each waiter at once, or at the end of its own ``first_poll_after``;
any other answer reaches a waiter when its own interval comes up (a waiter with a longer interval takes the
latest answer then, without a request of its own). Each waiter decides what the answer means with its own
connection (:func:`~airflow_provider_zendrive._client.transport.decide`), so its messages name its own
connection, and logs from its own task. Polls of different keys, connections with another secret, ``verify``
or ``timeout``, and different event loops are independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from airflow_provider_zendrive._client.api import StatsCall
from airflow_provider_zendrive._client.retry import Backoff, Wait, poll_again_after
from airflow_provider_zendrive._client.windows import DateWindow
from airflow_provider_zendrive.exceptions import ZenDriveError, ZenDriveRateLimitError

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

    import httpx

    from airflow_provider_zendrive._client.settings import ZenDriveSettings
    from airflow_provider_zendrive._client.transport import Failure, Reply

__all__ = [
    "KeyId",
    "KeyPace",
    "PollKey",
    "PollResult",
    "SharedPoll",
    "Turn",
    "Waiter",
    "forget_paces",
    "pace_for",
    "shared_poll",
]

#: The longest random phase before a lone caller's release, in seconds: the hook's jitter base (``Backoff.base``).
MAX_PHASE = 1.0
#: The pace of the releases against the measured refill: a little faster, so that a slow estimate is corrected.
FASTER = 0.9
#: How many recent unpaced successes a key remembers, to tell how many requests it took at once.
_REMEMBERED = 256
#: Keys the fingerprints: never leaves the process, so a fingerprint cannot be tested against guessed secrets.
_SALT = os.urandom(32)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyId:
    """
    Which callers share a rate limit and an answer: one endpoint, one access key, one secret, one TLS trust.

    :param url: the endpoint URL.
    :param access_key: the access key.
    :param fingerprint: a keyed hash (random per-process key) of the secret and the ``verify`` setting.
    """

    url: str
    access_key: str
    fingerprint: str = field(repr=False)

    @classmethod
    def of(cls, settings: ZenDriveSettings) -> KeyId:
        """The key of a connection's settings."""
        material = json.dumps([settings.secret_key, settings.verify]).encode()
        return cls(settings.url, settings.access_key, hmac.new(_SALT, material, hashlib.sha256).hexdigest())


class KeyPace:
    """
    One key's shared 429 knowledge in this process (see the module docstring). Every method is thread-safe.

    :param rng: uniform floats in [0, 1), for the release's random phase (for tests).
    """

    def __init__(self, *, rng: Callable[[], float] = random.random) -> None:
        self._rng = rng
        self._lock = threading.Lock()
        self._not_before = -float("inf")  # T: no request before this time.monotonic()
        self._retry_after = 0.0  # the Retry-After that closed the key last
        self._episode = 0  # times the key was closed: tells this closing's releases from older ones
        self._pacing = False  # closed, or releasing the callers queued while it was
        self._passed: deque[float] = deque(maxlen=_REMEMBERED)  # when unpaced requests went through
        self._closed_at = -float("inf")  # when the key closed last
        self._at_once = 0  # releases left of the first ones, which go without a step
        self._spread = 0.0  # the first step: the Retry-After spread over the queue
        self._step: float | None = None  # seconds between releases: the spread, then measured
        self._next = -float("inf")  # the next release time
        self._queued = 0  # callers waiting: for T, for their own Retry-After or for a release
        self._empty_since: float | None = None  # when a released request first found the key empty...
        self._refills = 0  # ...and how many released requests went through since
        self._turns = 0  # turns open now

    def turn(self) -> Turn:
        """A turn for one request and its retries; use it as a context manager."""
        return Turn(self)

    @property
    def idle(self) -> bool:
        """Nothing to remember and nobody taking turns: the registry may forget this key."""
        with self._lock:
            return not self._pacing and not self._turns and self._not_before < time.monotonic()

    def _admit(self, turn: Turn, now: float) -> float:
        """Under the lock: the time ``turn`` may send at (``<= now``: at once; it has then been sent)."""
        hold = max(self._not_before, turn.own_not_before)
        if self._pacing and now >= hold:
            if self._step is None:  # the first release: as many at once as the key took before it closed
                waiting = self._queued + (not turn.queued)
                took = sum(1 for when in self._passed if when >= self._closed_at - self._retry_after)
                self._at_once = min(took, waiting)
                # The rest spread over the Retry-After; no slower than the key took them before it closed.
                self._step = self._spread = self._retry_after / max(1, took, waiting - self._at_once)
                phase = self._rng() * min(self._step, MAX_PHASE) if waiting == 1 else 0.0
                self._next = now + phase  # a lone caller comes back apart from those of other processes
            elif not self._queued and now >= self._next + self._retry_after:  # quiet for a whole Retry-After
                self._pacing = False
            if self._pacing:
                hold = self._next  # not reserved: whoever asks first then takes it, at the pace known then
        if now < hold:
            if not turn.queued:
                self._queued, turn.queued = self._queued + 1, True
            return hold
        if turn.queued:
            self._queued, turn.queued = self._queued - 1, False
        step = self._step if self._pacing else None  # set by the first release
        if step is not None:
            if self._at_once:
                self._at_once -= 1
            if not self._at_once:  # after the last of those at once, every release is a step from the next
                self._next = now + step
        turn.sent_at, turn.released_in = now, None if step is None else self._episode
        return now

    def _throttled(self, turn: Turn, now: float, retry_after: float) -> None:
        """Under the lock: ``turn``'s request met a 429 with ``retry_after``."""
        if self._pacing and turn.released_in == self._episode:
            # Released before the key refilled: its caller waits its own Retry-After, and the pace is measured
            # from here (the key does not close again: the other callers' releases go on).
            if self._empty_since is None:
                self._empty_since, self._refills = turn.sent_at, 0
            turn.own_not_before = now + retry_after
            return
        if now + retry_after > self._not_before:
            self._not_before, self._retry_after = now + retry_after, retry_after
        if not self._pacing:
            self._pacing, self._episode, self._closed_at = True, self._episode + 1, now
            self._step = self._empty_since = None

    def _succeeded(self, turn: Turn, now: float) -> None:
        """Under the lock: ``turn``'s request went through."""
        if turn.released_in is None:
            self._passed.append(now)
            return
        since = self._empty_since
        if since is not None and turn.released_in == self._episode and turn.sent_at > since:
            # Each request released since the key was found empty and let through is one refill. The estimate
            # is low by up to one refill over the count (the empty key may have held part of a token), and the
            # pace goes a little faster still: a pace slower than the refill is never refused, so never fixed,
            # while one too fast only costs a refused caller its own Retry-After. Never faster than the spread,
            # which has just proved too fast.
            self._refills += 1
            self._step = max(self._spread, (turn.sent_at - since) / self._refills * FASTER)

    def _close(self, turn: Turn) -> None:
        if turn.queued:
            self._queued, turn.queued = self._queued - 1, False
        self._turns -= 1


class Turn:
    """
    One request's place in its key's pace, from the first attempt to the last retry.

    Ask :meth:`delay` before every attempt (and again after waiting: a 429 of another caller may have moved
    the time), then report :meth:`succeeded` or :meth:`throttled`.
    """

    def __init__(self, pace: KeyPace) -> None:
        self.pace = pace
        self.queued = False
        self.own_not_before = -float("inf")
        self.sent_at = -float("inf")
        self.released_in: int | None = None

    def __enter__(self) -> Turn:
        with self.pace._lock:
            self.pace._turns += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self.pace._lock:
            self.pace._close(self)

    def delay(self, now: float) -> float:
        """
        Seconds to wait before sending; 0 means send now (the send is then recorded at ``now``).

        :param now: ``time.monotonic()``, or a later time if the caller's clock ran ahead (recorded waits).
        """
        with self.pace._lock:
            return max(0.0, self.pace._admit(self, now) - now)

    def succeeded(self, now: float) -> None:
        """
        The request went through.

        :param now: ``time.monotonic()`` (or the caller's clock, see :meth:`delay`).
        """
        with self.pace._lock:
            self.pace._succeeded(self, now)

    def throttled(self, now: float, error: ZenDriveError) -> bool:
        """
        Report a failed attempt; True when the key's pace decides when this caller sends again (a 429 with
        ``Retry-After``: ask :meth:`delay`), False when the caller's own backoff does.
        """
        if not isinstance(error, ZenDriveRateLimitError) or error.retry_after is None:
            return False
        with self.pace._lock:
            self.pace._throttled(self, now, error.retry_after)
        return True


_paces: dict[KeyId, KeyPace] = {}
_paces_lock = threading.Lock()


def pace_for(settings: ZenDriveSettings) -> KeyPace:
    """The pace of the settings' key, shared by every caller of it in this process."""
    key = KeyId.of(settings)
    with _paces_lock:
        pace = _paces.get(key)
        if pace is None:
            for old in [old for old, known in _paces.items() if known.idle]:
                del _paces[old]
            pace = _paces[key] = KeyPace()
        return pace


def forget_paces() -> None:
    """
    Forget what this process learned about every key's limit (turns still open keep their own pace).

    For a server whose limits were reset: the emulator's pytest fixture calls it with each reset.
    """
    with _paces_lock:
        _paces.clear()


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
        self.news: PollResult | None = None  # the latest "waiting" answer it has not taken yet
        self.ending: PollResult | None = None  # the answer that ends its wait
        self.ended = False
        self._inbox: asyncio.Queue[PollResult | Exception] = asyncio.Queue()

    async def next(self) -> PollResult:
        """The next answer meant for this waiter."""
        item = await self._inbox.get()
        if isinstance(item, Exception):
            raise item
        return item

    def _offer(self, result: PollResult) -> None:
        if result.sent < self.joined or self.ending is not None:
            return
        if result.verdict == "waiting":
            self.news = result
        else:
            self.ending = result

    def _deliver(self, now: float) -> None:
        if self.ending is not None:
            if not self.ended and now >= self.first_due:
                self._inbox.put_nowait(self.ending)
                self.ended = True
        elif self.news is not None and now >= self.due:
            self._inbox.put_nowait(self.news)
            self.due = self.news.received + max(self.poke_interval, self.news.min_wait)
            self.news = None

    def _wants_poll_at(self) -> float | None:
        return self.due if self.ending is None and self.news is None else None

    def _delivers_at(self) -> float | None:
        if self.ending is not None:
            return None if self.ended else self.first_due
        return self.due if self.news is not None else None


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
        from airflow_provider_zendrive._client.transport import open_client

        pace = pace_for(self._settings)
        try:
            async with open_client(self._settings, self._context) as client:
                while True:
                    with pace.turn() as turn:
                        if not await self._until_due(turn):
                            return
                        result = await self._poll(client, turn)
                    for waiter in self._waiters:
                        waiter._offer(result)
        except Exception as exc:  # a bug must not leave every trigger of the key waiting in silence
            for waiter in self._waiters:
                waiter._inbox.put_nowait(exc)
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
                waiter._deliver(now)
            poll_at = min((t for w in self._waiters if (t := w._wants_poll_at()) is not None), default=None)
            if poll_at is not None and poll_at <= now:
                hold = turn.delay(now)
                if not hold:
                    return True
                poll_at = now + hold
            deliveries = [t for w in self._waiters if (t := w._delivers_at()) is not None]
            wake = min([*deliveries, *([] if poll_at is None else [poll_at])], default=None)
            if not self._waiters:
                return False
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if wake is None else max(0.0, wake - now)):
                    await self._changed.wait()

    async def _poll(self, client: httpx.AsyncClient, turn: Turn) -> PollResult:
        from airflow_provider_zendrive._client.transport import send

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
        from airflow_provider_zendrive._client.transport import decide

        call = StatsCall(self._settings, window, backoff=Backoff(), log=_log, max_retries=0)
        try:
            outcome = decide(call, answer)
            if isinstance(outcome, Wait):  # never with max_retries=0; the type allows it
                raise outcome.error
        except ZenDriveError as exc:
            return exc
        return None


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
