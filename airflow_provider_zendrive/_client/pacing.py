"""
Shared 429 knowledge: what the callers of one pair of keys learn about its rate limit inside one process.

The rate limit is per key, and two places put many callers on one key in one process: the threads of a task
(a pool of hooks) and the triggerer (every deferred sensor of a deployment, on one event loop, see
:mod:`~airflow_provider_zendrive._client.polling`). This module is the one place where they learn from each
other. Callers are grouped by :class:`KeyId`: the endpoint URL, the
access key and a keyed hash of the secret and the ``verify`` setting, so connections with another secret or
another trust setting for the same access key never share a wait or an answer, and the secret is never held
here. Nothing crosses the process: across processes and machines the Airflow pool stays the bound.

:class:`KeyPace` is thread-safe (any thread, any event loop). Every request of a key takes a :class:`Turn`
first:

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

A 429 without ``Retry-After`` (the API contract promises none) says only that the key was empty then, so the
pace is learned from the answers instead, in the same queue:

* the first such 429 of a key starts pacing it: nobody is held, but every request of the key now takes a
  release. The first comes the backoff's base (a second) spread over the callers queued by then, after that
  429; a lone caller's after a random phase of up to a second instead, as its own backoff would;
* every release that goes through makes the step shorter (:data:`FASTER_AFTER_SUCCESS`; quickly,
  :data:`BACK_AFTER_SUCCESS`, back to the last step that was only a little too fast). A refused release
  requeues its caller (it does not sleep a backoff of its own) and makes the step longer: by
  :data:`SLOWER_AFTER_REFUSAL` when a release went through since the refusal before, twice as long when none
  did (the backoff's doubling; a lone caller then goes after a random part of the step, as its own backoff's
  full jitter would). Never shorter than the refusal proved, for the next :data:`LONG_RUN` releases:
  the key was empty at the refusal before and let ``n`` releases through since, so (unless its bucket filled
  up meanwhile) it refills more slowly than one per (the time between) / ``n + 1``;
* a refusal of a request sent before the previous one was known teaches nothing (it went at the old pace);
* every wait stays bounded: a caller is held at most ``longest`` seconds (the hook passes its backoff's cap)
  after each 429, and each 429 counts against ``max_retries`` as before; the step is at most
  :data:`MAX_STEP`;
* once nobody has queued for a step and a second, the key is open again; a 429 with ``Retry-After`` replaces
  what was learned (the server says).

Only 429s teach: a 5xx, with or without ``Retry-After``, is left to the caller's own backoff
(:mod:`~airflow_provider_zendrive._client.retry`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_zendrive.exceptions import ZenDriveError, ZenDriveRateLimitError

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_zendrive._client.settings import ZenDriveSettings

__all__ = [
    "BACK_AFTER_SUCCESS",
    "FASTER_AFTER_SUCCESS",
    "LONG_RUN",
    "MAX_PHASE",
    "MAX_STEP",
    "SLOWER_AFTER_REFUSAL",
    "STEP_OF_REFILL",
    "KeyId",
    "KeyPace",
    "Turn",
    "forget_paces",
    "pace_for",
]

#: The longest random phase before a lone caller's release, in seconds: the hook's jitter base (``Backoff.base``).
MAX_PHASE = 1.0
#: Without Retry-After: the longest step between releases, and the longest hold after a 429 unless the caller
#: says otherwise (the hook passes its backoff's cap, ``Backoff.cap``).
MAX_STEP = 60.0
#: Without Retry-After: the step after a refused release when some went through since the refusal before (a
#: little too fast: 25 % slower)...
SLOWER_AFTER_REFUSAL = 1.25
#: ...and after each release that goes through (3 % faster; after each further :data:`LONG_RUN` let through in a
#: row, 3 % more, so that a key that got faster is followed).
FASTER_AFTER_SUCCESS = 0.97
#: ...or, while the step is longer than the last one that was only a little too fast, back towards it fast.
BACK_AFTER_SUCCESS = 0.7
#: Releases let through in a row after which the last refusal's proof no longer bounds the step.
LONG_RUN = 16
#: The step between releases as a fraction of the measured refill interval: a little faster than the refill, so
#: that a slow estimate gets corrected.
STEP_OF_REFILL = 0.9
#: How many recent unpaced successes a key remembers, to tell how many requests it took at once.
_REMEMBERED = 256
#: Keys the fingerprints: never leaves the process, so a fingerprint cannot be tested against guessed secrets.
_SALT = os.urandom(32)


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
        self._blind = False  # paced after a 429 without Retry-After: the key's pace is learned, not told
        self._phase = 0.0  # the random phase of this closing's first release, as a fraction of a base
        self._floor = 0.0  # without Retry-After: the longest step the key has proved too short
        self._learned_at = -float("inf")  # without Retry-After: when the last refusal was learned
        self._threshold = 0.0  # without Retry-After: the step after the last refusal that followed a success

    def turn(self) -> Turn:
        """A turn for one request and its retries; use it as a context manager."""
        return Turn(self)

    @property
    def idle(self) -> bool:
        """Nothing to remember and nobody taking turns: the registry may forget this key."""
        now = time.monotonic()
        with self._lock:
            return not self._turns and self._not_before < now and (not self._pacing or self._quiet_since(now))

    def enter(self, turn: Turn) -> None:
        """``turn`` opens: its ``with`` block begins."""
        with self._lock:
            self._turns += 1

    def leave(self, turn: Turn) -> None:
        """``turn`` closes (its ``with`` block ends): it no longer waits."""
        with self._lock:
            if turn.queued:
                self._queued, turn.queued = self._queued - 1, False
            self._turns -= 1

    def admit(self, turn: Turn, now: float) -> float:
        """The time ``turn`` may send at (``<= now``: at once; it has then been sent)."""
        with self._lock:
            return self._admit(turn, now)

    def _admit(self, turn: Turn, now: float) -> float:
        hold = max(self._not_before, turn.own_not_before)
        if self._pacing and now >= hold:
            if self._step is None:
                if self._blind:
                    hold = self._first_blind_release(turn, now)
                else:
                    self._first_release(turn, now)
            elif self._quiet_since(now):
                self._pacing = False
            if self._pacing and self._step is not None:
                hold = self._next  # not reserved: whoever asks first then takes it, at the pace known then
        if now < hold and now < turn.latest:
            if not turn.queued:
                self._queued, turn.queued = self._queued + 1, True
            return min(hold, turn.latest)
        if turn.queued:
            self._queued, turn.queued = self._queued - 1, False
        if self._pacing and self._blind and self._step is None:  # the first release without Retry-After
            self._step = MAX_PHASE / (self._queued + 1)
        step = self._step if self._pacing else None  # set by the first release
        if step is not None:
            if self._at_once:
                self._at_once -= 1
            if not self._at_once:  # after the last of those at once, every release is a step from the next
                self._next = now + step
        turn.sent_at, turn.release_episode = now, None if step is None else self._episode
        turn.latest = float("inf")
        return now

    def _first_release(self, turn: Turn, now: float) -> None:
        """The first release after a Retry-After: as many at once as the key took before it closed."""
        waiting = self._queued + (not turn.queued)
        took = sum(1 for when in self._passed if when >= self._closed_at - self._retry_after)
        self._at_once = min(took, waiting)
        # The rest spread over the Retry-After; no slower than the key took them before it closed.
        self._step = self._spread = self._retry_after / max(1, took, waiting - self._at_once)
        phase = self._rng() * min(self._step, MAX_PHASE) if waiting == 1 else 0.0
        self._next = now + phase  # a lone caller comes back apart from those of other processes

    def _first_blind_release(self, turn: Turn, now: float) -> float:
        """
        When the first release comes after a 429 without Retry-After: the backoff's base spread over the
        callers queued by then (they keep coming as their 429s arrive), a lone caller after a random phase of up
        to a base, as its own backoff would.
        """
        waiting = self._queued + (not turn.queued)
        after = self._phase * MAX_PHASE if waiting == 1 else MAX_PHASE / waiting
        return self._closed_at + after

    def _quiet_since(self, now: float) -> bool:
        """
        Whether nobody has queued for long enough to open the key again: for a whole Retry-After, or without one
        a step and a base, since the last release (or since it closed, if nobody was ever released).
        """
        quiet = MAX_PHASE + (self._step or 0.0) if self._blind else self._retry_after
        last = self._closed_at if self._step is None else self._next
        return not self._queued and now >= last + quiet

    def throttled(
        self, turn: Turn, now: float, retry_after: float | None, *, longest: float = MAX_STEP
    ) -> None:
        """
        ``turn``'s request met a 429 with ``retry_after`` (None: without the header).

        :param longest: without ``Retry-After``, the most seconds the pace may hold this caller before it sends
            again (its backoff's cap).
        """
        with self._lock:
            if retry_after is None:
                self._throttled_blind(turn, now, longest)
            else:
                self._throttled(turn, now, retry_after)

    def _throttled(self, turn: Turn, now: float, retry_after: float) -> None:
        if self._pacing and self._blind:  # the server says how long after all: that replaces what was learned
            self._pacing = False
        if self._pacing and turn.release_episode == self._episode:
            # Released before the key refilled: its caller waits its own Retry-After, and the pace is measured
            # from here (the key does not close again: the other callers' releases go on).
            if self._empty_since is None:
                self._empty_since, self._refills = turn.sent_at, 0
            turn.own_not_before, turn.latest = now + retry_after, float("inf")
            return
        turn.latest = float("inf")
        if now + retry_after > self._not_before:
            self._not_before, self._retry_after = now + retry_after, retry_after
        if not self._pacing:
            self._pacing, self._blind, self._episode, self._closed_at = True, False, self._episode + 1, now
            self._step = self._empty_since = None

    def _throttled_blind(self, turn: Turn, now: float, longest: float) -> None:
        turn.latest = now + longest
        if not self._pacing:  # the key is found empty: from now on it is paced, at a step learned as it goes
            self._pacing, self._blind, self._episode, self._closed_at = True, True, self._episode + 1, now
            self._step, self._at_once, self._phase = None, 0, self._rng()
            self._empty_since, self._refills, self._floor, self._threshold = now, 0, 0.0, 0.0
            self._learned_at = now
            return
        since = self._empty_since
        if (
            not self._blind
            or since is None
            or turn.release_episode != self._episode
            or turn.sent_at <= self._learned_at
        ):
            # Sent before the last refusal was known (at the pace it corrected), or in a Retry-After's pace: it
            # queues, and teaches nothing.
            return
        # A released request refused: the key was empty at ``since`` and again now, and let ``refills`` through
        # in between, so it refills more slowly than one per (sent_at - since) / (refills + 1) seconds.
        # Over a longer run than LONG_RUN, the key may have got faster on the way: no proof of its pace now.
        proven = (turn.sent_at - since) / (self._refills + 1) if self._refills < LONG_RUN else 0.0
        step = self._step or MAX_PHASE
        self._floor = proven
        if self._refills:  # too fast after all: a little slower, and from here on speed up slowly
            self._step = self._threshold = min(MAX_STEP, max(proven, step * SLOWER_AFTER_REFUSAL))
        else:  # nothing let through since the last refusal: back off, the next release a new step from this one
            self._step = min(MAX_STEP, max(proven, step * 2))
            # A lone caller (nobody else queued) after a random part of it instead, as its own backoff would.
            self._next = max(self._next, turn.sent_at + self._step * (1.0 if self._queued else self._rng()))
        self._empty_since, self._refills, self._learned_at = turn.sent_at, 0, now

    def succeeded(self, turn: Turn, now: float) -> None:
        """``turn``'s request went through."""
        with self._lock:
            self._succeeded(turn, now)

    def _succeeded(self, turn: Turn, now: float) -> None:
        if turn.release_episode is None:
            self._passed.append(now)
            return
        since = self._empty_since
        if since is None or turn.release_episode != self._episode or turn.sent_at <= since:
            return
        self._refills += 1
        if self._blind:
            # Let through: the releases may go a little faster, down to the step last proved too short.
            step = self._step or MAX_PHASE
            # The last refusal's proof holds for a while; a long run let through may mean the key got faster.
            floor = self._floor if self._refills <= LONG_RUN else 0.0
            if step > self._threshold:  # back quickly to the last step that was only a little too fast
                self._step = max(floor, self._threshold, step * BACK_AFTER_SUCCESS)
            else:
                self._step = max(floor, step * FASTER_AFTER_SUCCESS ** (1 + self._refills // LONG_RUN))
            return
        # Each request released since the key was found empty and let through is one refill. The estimate
        # is low by up to one refill over the count (the empty key may have held part of a token), and the
        # pace goes a little faster still: a pace slower than the refill is never refused, so never fixed,
        # while one too fast only costs a refused caller its own Retry-After. Never faster than the spread,
        # which has just proved too fast.
        self._step = max(self._spread, (turn.sent_at - since) / self._refills * STEP_OF_REFILL)


class Turn:
    """
    One request's place in its key's pace, from the first attempt to the last retry.

    Ask :meth:`delay` before every attempt (and again after waiting: a 429 of another caller may have moved
    the time), then report :meth:`succeeded` or :meth:`throttled`. Its attributes are the pace's bookkeeping.
    """

    def __init__(self, pace: KeyPace) -> None:
        self.pace = pace
        #: Whether the pace counts this turn among its waiting callers.
        self.queued = False
        #: No request before this ``time.monotonic()``: its own Retry-After, after a release that was refused.
        self.own_not_before = -float("inf")
        #: When its latest request was sent.
        self.sent_at = -float("inf")
        #: Which closing of the key released its latest request (None: it went unpaced).
        self.release_episode: int | None = None
        #: Held no later than this ``time.monotonic()``: its backoff's cap after a 429 without Retry-After.
        self.latest = float("inf")

    def __enter__(self) -> Turn:
        self.pace.enter(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.pace.leave(self)

    def delay(self, now: float) -> float:
        """
        Seconds to wait before sending; 0 means send now (the send is then recorded at ``now``).

        :param now: ``time.monotonic()``, or a later time if the caller's clock ran ahead (recorded waits).
        """
        return max(0.0, self.pace.admit(self, now) - now)

    def succeeded(self, now: float) -> None:
        """
        The request went through.

        :param now: ``time.monotonic()`` (or the caller's clock, see :meth:`delay`).
        """
        self.pace.succeeded(self, now)

    def throttled(self, now: float, error: ZenDriveError, *, longest: float = MAX_STEP) -> bool:
        """
        Report a failed attempt; True when the key's pace decides when this caller sends again (a 429: ask
        :meth:`delay`), False when the caller's own backoff does.

        :param longest: after a 429 without ``Retry-After``, the most seconds the pace may hold this caller.
        """
        if not isinstance(error, ZenDriveRateLimitError):
            return False
        self.pace.throttled(self, now, error.retry_after, longest=longest)
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
