"""
OpenLineage datasets for what one operator run read and wrote, named per OpenLineage's naming conventions.

* Input: the usage statistics of one service at the API, namespace ``https://<host>[:<port>]``, name
  ``<endpoint path><service_id>`` (e.g. ``https://dashboard.clearstreamer.com`` +
  ``/zendrive-api/cdn-stats/1234``). There is no convention for HTTP APIs; this one keeps one dataset per
  service and endpoint, which is what a reader of the lineage graph asks for.
* A file: a local file is namespace ``file`` and its absolute path, as Airflow's own ``file://`` assets translate;
  object storage is ``<scheme>://<bucket>`` and the key (``s3://bucket`` + ``reports/x.csv``).
* A table: the SQL hook's own OpenLineage database info when it has some (PostgreSQL: ``postgres://host:port``
  and ``database.schema.table``, the schema defaulting to the hook's); SQLite, which has none, is
  ``sqlite://<absolute file path>`` and ``main.<table>`` (or ``<schema>.<table>``).

Imported only by ``ZenDriveStatsOperator.get_openlineage_facets_on_complete``, which the OpenLineage provider
calls; nothing here is imported where that provider is not installed.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["Lineage", "file_dataset", "operator_lineage", "source_dataset", "table_dataset"]


@dataclass(frozen=True)
class Lineage:
    """
    What one run read and wrote, kept by the operator for the OpenLineage listener.

    :param endpoint: the API endpoint URL the stats came from.
    :param service_id: the service whose usage was read.
    :param file_uri: the URI of the file written, if any.
    :param sql_conn_id: the SQL connection of the table written, if any.
    :param table: the table written (with ``sql_conn_id``).
    """

    endpoint: str
    service_id: int
    file_uri: str | None = None
    sql_conn_id: str | None = None
    table: str | None = None


def source_dataset(endpoint: str, service_id: int) -> tuple[str, str]:
    """The ``(namespace, name)`` of a service's usage statistics at the API."""
    parts = urllib.parse.urlsplit(endpoint)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}", f"{path}{service_id}"


def file_dataset(uri: str) -> tuple[str, str]:
    """The ``(namespace, name)`` of a written file, from its URI (``file:///...`` or an object storage URI)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("", "file"):
        return "file", urllib.parse.unquote(parts.path)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def table_dataset(sql_conn_id: str, table: str) -> tuple[str, str]:
    """The ``(namespace, name)`` of a table, from its connection's hook (see the module docstring)."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    from airflow_provider_zendrive._outputs.tables import get_db_hook

    hook: Any = get_db_hook(sql_conn_id)
    parts = table.split(".")
    connection = hook.get_connection(sql_conn_id)
    info = hook.get_openlineage_database_info(connection)
    if info is None:  # SQLite, and any hook without OpenLineage support: the database is its file or host
        database = os.path.abspath(connection.host) if connection.conn_type == "sqlite" else connection.host
        schema = parts[-2] if len(parts) > 1 else "main"
        return f"{connection.conn_type}://{database}", f"{schema}.{parts[-1]}"
    if len(parts) == 1:
        parts = [hook.get_openlineage_default_schema() or "public", parts[0]]
    if len(parts) == 2 and info.database:
        parts = [info.database, *parts]
    return SQLParser.create_namespace(info), ".".join(parts)


def operator_lineage(lineage: Lineage) -> OperatorLineage[Any, Any]:
    """The OpenLineage inputs and outputs of one run."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    outputs = []
    if lineage.file_uri:
        outputs.append(Dataset(*file_dataset(lineage.file_uri)))
    if lineage.sql_conn_id and lineage.table:
        outputs.append(Dataset(*table_dataset(lineage.sql_conn_id, lineage.table)))
    return OperatorLineage(
        inputs=[Dataset(*source_dataset(lineage.endpoint, lineage.service_id))], outputs=outputs
    )
