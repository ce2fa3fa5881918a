"""
Feature checks for the Airflow APIs that are newer than the provider's floor (Airflow 3.1), where
``airflow.providers.common.compat`` (a dependency; the package's route for every name it maps, such as ``conf``
and ``AirflowFailException``) has none.

Each helper uses the newer API where it exists and a correct fallback where it does not; nothing else in the
package tests Airflow's version. Internal: not part of the public API.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive.exceptions import ZenDriveInputError

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["AirflowRescheduleException", "aextra_dejson", "amask_secret"]

try:  # Airflow 3.2+ (3.1's airflow.sdk.exceptions lacks it; core's name warns from 3.2 on; common.compat maps
    # the other exceptions but not this one)
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowRescheduleException


async def aextra_dejson(conn: Connection) -> dict[str, Any]:
    """
    A connection's extras, read safely from the triggerer's event loop.

    Airflow 3.3.2+ has ``Connection.aextra_dejson``. Before it, the sync ``extra_dejson`` masks sensitive
    extras through a blocking call to the supervisor, which can deadlock the triggerer's loop
    (apache/airflow#71891): decode the JSON here instead. (common.compat's ``get_async_extra_dejson`` runs
    ``extra_dejson`` in a worker thread instead, a route this provider has not proven on 3.1's triggerer.) The provider's own extras (``timeout``, ``verify``,
    ``max_retries``) hold no secrets, so skipping the masking of extras loses nothing.

    :raises ZenDriveInputError: when the extras are not a JSON object.
    """
    reader = getattr(conn, "aextra_dejson", None)
    if reader is not None:
        extra: Any = await reader()
        return dict(extra)
    text = conn.extra or "{}"
    try:
        extra = json.loads(text)
    except ValueError:
        extra = None
    if not isinstance(extra, dict):
        raise ZenDriveInputError(f"Connection {conn.conn_id!r}: its extra field is not a JSON object.")
    return extra


async def amask_secret(secret: str) -> None:
    """
    Register a secret with Airflow's secrets masker from async code (the triggerer's event loop).

    Airflow 3.3+ has the async ``amask_secret``. Before it, only the sync ``mask_secret`` exists, and how it
    may be called from the loop matters: called directly it cannot reach the supervisor on 3.1 (the triggerer's
    logs stay unmasked); from ``asyncio.to_thread`` it crashes 3.1's trigger runner ("Response read out of
    order"); registering with this process's masker alone does not mask trigger logs either, which the
    supervisor redacts. ``asgiref``'s ``sync_to_async`` (what Airflow's own triggerer uses, a dependency of
    every Airflow 3) reaches the supervisor on 3.1 and 3.2.
    """
    try:
        from airflow.sdk.log import amask_secret as _amask_secret
    except ImportError:  # Airflow < 3.3
        from airflow.sdk.log import mask_secret
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)
        return
    await _amask_secret(secret)
