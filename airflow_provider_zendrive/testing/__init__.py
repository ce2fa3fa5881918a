"""
Test support shipped with the provider: an HTTPS emulator of the ZenDRIVE usage-statistics endpoint.

Run it by hand with ``python -m airflow_provider_zendrive.testing``, use :class:`ZenDriveEmulator` as a context
manager, or take the pytest fixtures ``zendrive_emulator`` (function scope, reset between tests) and
``zendrive_emulator_session`` (one server for the session). Importing this package is cheap: it needs neither
Airflow nor ``cryptography`` until an emulator starts.
"""

from __future__ import annotations

from airflow_provider_zendrive.testing._data import (
    DEMO_ACCESS_KEY,
    DEMO_SECRET_KEY,
    DEMO_SERVICE_ID,
    ENDPOINT_PATH,
    usage_for_day,
)
from airflow_provider_zendrive.testing._types import Account, Fault, RecordedRequest
from airflow_provider_zendrive.testing.emulator import ZenDriveEmulator

__all__ = [
    "DEMO_ACCESS_KEY",
    "DEMO_SECRET_KEY",
    "DEMO_SERVICE_ID",
    "ENDPOINT_PATH",
    "Account",
    "Fault",
    "RecordedRequest",
    "ZenDriveEmulator",
    "usage_for_day",
]
