"""
The ZenDRIVE plugin: the "ZenDRIVE usage" page in Airflow's navigation (Airflow 3.1+), for signed-in users.

Every Airflow process that loads plugins imports this module (task runners included), so it imports nothing
but Airflow's plugin base class and configuration (the Task SDK's where there is one): the page's FastAPI app (:mod:`airflow_provider_zendrive._usage.app`), SQL and
the rendering are imported by the API server at the page's first request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlparse

from airflow.providers.common.compat.sdk import AirflowPlugin, conf

__all__ = ["URL_PREFIX", "ZenDriveUsagePlugin"]

#: Where the app is mounted on the API server (below ``[api] base_url``'s path).
URL_PREFIX = "/zendrive"

_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _UsageApp:
    """An ASGI app that builds the page's FastAPI app at its first request, and passes every request to it."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: _Receive, send: _Send) -> None:
        if self._app is None:
            from airflow_provider_zendrive._usage.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:  # what Admin > Plugins and ``airflow plugins`` show
        return "airflow_provider_zendrive._usage.app.create_app()"


def _base_path() -> str:
    """The path of ``[api] base_url`` (``""`` at the root), which the UI's links and the cookie's path follow."""
    base_url = str(conf.get("api", "base_url", fallback="/") or "/")
    return (urlparse(base_url).path if "://" in base_url else base_url).rstrip("/")


class ZenDriveUsagePlugin(AirflowPlugin):
    """This month's ZenDRIVE usage per service, the budget and 90 days of charts, from the warehouse table."""

    # Lists, as AirflowPlugin declares them (a ClassVar annotation would not override its attributes).
    name = "zendrive"
    fastapi_apps = [{"app": _UsageApp(), "url_prefix": URL_PREFIX, "name": "ZenDRIVE usage"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "ZenDRIVE usage",
            "href": f"{_base_path()}{URL_PREFIX}/usage",
            "destination": "nav",
            "url_route": "zendrive_usage",
        }
    ]
