"""
pytest fixtures for the ZenDRIVE emulator (registered through the ``pytest11`` entry point).

``zendrive_emulator_session`` is one running emulator for the whole session. ``zendrive_emulator`` hands the
same server to a test after :meth:`~airflow_provider_zendrive.testing.emulator.ZenDriveEmulator.reset` (faults, recorded requests, rate-limit buckets,
accounts, counters and settings back to their defaults; the provider's in-process knowledge of its rate limits
forgotten), so it costs nothing per test. A test that changes
``rate_limit``, ``today``, ``burst`` or ``retry_after`` on it gets them restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_zendrive.testing.emulator import ZenDriveEmulator

__all__ = ["zendrive_emulator", "zendrive_emulator_session"]


@pytest.fixture(scope="session")
def zendrive_emulator_session() -> Iterator[ZenDriveEmulator]:
    """A started emulator shared by the whole session (state is not reset between tests)."""
    with ZenDriveEmulator() as emulator:
        yield emulator


@pytest.fixture
def zendrive_emulator(zendrive_emulator_session: ZenDriveEmulator) -> Iterator[ZenDriveEmulator]:
    """
    The session's emulator, reset before and after the test, and with it what the provider's callers in this
    process learned about its rate limits (a 429's Retry-After is shared by every caller of a key).
    """
    from airflow_provider_zendrive._client.pacing import forget_paces

    zendrive_emulator_session.reset()
    forget_paces()
    yield zendrive_emulator_session
    zendrive_emulator_session.reset()
    forget_paces()
