"""
The FastAPI app of the usage page, mounted by the plugin under ``/zendrive``: ``GET /usage`` (the page) and
``GET /usage/data`` (the same numbers as JSON). Both depend on Airflow's ``requires_authenticated()``, as
Airflow's own API does: the session cookie (``_token``) or a Bearer token, checked by the auth manager; none
gives 401, an invalid one 403. Read-only (GET only), never cached, and the page may run no script.
"""

from __future__ import annotations

import datetime

# At module level: FastAPI reads the routes' annotations (``Request``) from this module's globals. The plugin
# imports this module at the page's first request only.
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

__all__ = ["HEADERS", "create_app"]

#: Sent with every answer: no script, no fetch, no other site framing it, no caching of the numbers.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'self'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def create_app() -> FastAPI:
    """Build the app (the plugin builds it at the first request, so the API server starts as fast as before)."""
    from airflow.api_fastapi.core_api.security import requires_authenticated

    from airflow_provider_zendrive._config import usage_settings
    from airflow_provider_zendrive._usage.data import UsageQuery, read_usage
    from airflow_provider_zendrive._usage.page import render_error, render_page
    from airflow_provider_zendrive.exceptions import ZenDriveInputError

    app = FastAPI(
        title="ZenDRIVE usage",
        dependencies=[Depends(requires_authenticated())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def today() -> datetime.date:
        return datetime.datetime.now(datetime.UTC).date()

    @app.get("/usage", response_class=HTMLResponse)
    def page(request: Request, month: str | None = None, service: str | None = None) -> HTMLResponse:
        try:
            query = UsageQuery.parse(month, service, today())
            view = read_usage(usage_settings(), query)
        except (ValueError, ZenDriveInputError) as exc:
            return HTMLResponse(render_error(str(exc)), status_code=400, headers=HEADERS)
        return HTMLResponse(render_page(view, request.url.path), headers=HEADERS)

    @app.get("/usage/data")
    def data(month: str | None = None, service: str | None = None) -> JSONResponse:
        try:
            query = UsageQuery.parse(month, service, today())
            view = read_usage(usage_settings(), query)
        except (ValueError, ZenDriveInputError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400, headers=HEADERS)
        return JSONResponse(view.as_dict(), headers=HEADERS)

    return app
