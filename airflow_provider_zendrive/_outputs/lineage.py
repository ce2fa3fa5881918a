"""
OpenLineage datasets for what one operator run read and wrote, named per OpenLineage's naming conventions
(``website/docs/spec/naming.md``), with the facets a consumer needs.

Names:

* Input: the usage statistics of one service at the API, namespace ``https://<host>[:<port>]``, name
  ``<endpoint path><service_id>`` (e.g. ``https://dashboard.clearstreamer.com`` +
  ``/zendrive-api/cdn-stats/1234``). The spec has no convention for HTTP APIs; this one keeps one dataset per
  service and endpoint, which is what a reader of the lineage graph asks for. The service is known only from the
  API's answer: a run that failed before it names the endpoint itself (``/zendrive-api/cdn-stats/``).
* A file: a local file is namespace ``file`` and its absolute path, as Airflow's own ``file://`` assets translate;
  object storage is ``<scheme>://<bucket>`` and the key (``s3://bucket`` + ``reports/x.csv``). Google Cloud
  Storage is ``gs://<bucket>`` whichever scheme the path used (``gs://`` or fsspec's ``gcs://``), as the spec
  and Airflow's Google operators name it.
* A table: the SQL hook's own OpenLineage database info when it has some (PostgreSQL: ``postgres://host:port``
  and ``database.schema.table``, the schema defaulting to the hook's; MySQL: ``mysql://host:port`` and
  ``database.table``). SQLite, which the spec does not list and whose hook has none, is
  ``sqlite://<absolute file path>`` and ``main.<table>`` (or ``<schema>.<table>`` for an attached database):
  the file is the database, and ``main`` is the name SQLite itself gives it.

Facets: every dataset has ``dataSource`` (its namespace as name and URI; the input's URI is the endpoint URL,
which never holds credentials). Every output has ``schema`` (the columns written, with the types of the format:
Arrow types for Parquet, ``integer`` / ``date`` for CSV and JSON Lines, the nested stats dict for JSON, the SQL
types ``CREATE TABLE`` declares for a table) and ``outputStatistics`` (``rowCount``; ``size`` in bytes for a
file). Outputs are reported when written: a run that fails after its file and before its table lists the file
only, one that fails before any write lists none.

Imported by the operator to record what it wrote (stdlib only) and by its OpenLineage methods, which the
OpenLineage provider calls; the provider's classes are imported only there.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = [
    "Column",
    "FileOutput",
    "Lineage",
    "TableOutput",
    "file_dataset",
    "file_fields",
    "operator_lineage",
    "source_dataset",
    "table_dataset",
]


@dataclass(frozen=True)
class FileOutput:
    """
    A file the run wrote.

    :param uri: its URI (:func:`~airflow_provider_zendrive._outputs.files.output_uri`).
    :param output_format: its format (:func:`~airflow_provider_zendrive._outputs.rows.resolve_format`).
    :param rows: the rows written (days of the stats dict for JSON).
    :param size: its size in bytes.
    """

    uri: str
    output_format: str
    rows: int
    size: int


@dataclass(frozen=True)
class TableOutput:
    """
    A table the run wrote.

    :param sql_conn_id: the SQL connection.
    :param table: the table, ``[schema.]name``.
    :param rows: the rows written (upserted, or appended to the audit trail).
    :param audit_trail: the table is the audit trail (``revisions_table``), not the usage table.
    """

    sql_conn_id: str
    table: str
    rows: int
    audit_trail: bool = False


@dataclass
class Lineage:
    """
    What one run read and wrote, kept by the operator for the OpenLineage listener.

    :param endpoint: the API endpoint URL the stats come from.
    :param service_id: the service whose usage was read; None until the API answered.
    :param outputs: what was written, in order, each added once it is complete.
    """

    endpoint: str
    service_id: int | None = None
    outputs: list[FileOutput | TableOutput] = field(default_factory=list)


def source_dataset(endpoint: str, service_id: int | None) -> tuple[str, str]:
    """The ``(namespace, name)`` of a service's usage statistics at the API (of the endpoint, without one)."""
    parts = urllib.parse.urlsplit(endpoint)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return f"{parts.scheme}://{parts.netloc}", path if service_id is None else f"{path}{service_id}"


def file_dataset(uri: str) -> tuple[str, str]:
    """The ``(namespace, name)`` of a written file, from its URI (``file:///...`` or an object storage URI)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("", "file"):
        return "file", urllib.parse.unquote(parts.path)
    scheme = "gs" if parts.scheme == "gcs" else parts.scheme
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")


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


@dataclass(frozen=True)
class Column:
    """
    One field of a ``schema`` facet.

    :param name: the column's name.
    :param type: its type, in the terms of the format or database.
    :param fields: the nested fields of a struct or of an array's items.
    """

    name: str
    type: str
    fields: tuple[Column, ...] = ()


def file_fields(output_format: str) -> tuple[Column, ...]:
    """The columns of a file of ``output_format``, with that format's types (see the module docstring)."""
    from airflow_provider_zendrive._client.models import ADDITIVE_FIELDS, DAILY_FIELDS

    if output_format == "parquet":
        from airflow_provider_zendrive._outputs.parquet import parquet_schema

        return tuple(Column(f.name, str(f.type)) for f in parquet_schema())
    day = (Column("date", "date"), *(Column(name, "integer") for name in DAILY_FIELDS))
    if output_format != "json":
        return (Column("service_id", "integer"), *day)
    summary = (
        *(Column(name, "integer") for name in (*ADDITIVE_FIELDS, "unique_ips")),
        Column("success_rate", "number"),
    )
    return (
        Column("status", "string"),
        Column("service_id", "integer"),
        Column("from", "date"),
        Column("to", "date"),
        Column("summary", "struct", summary),
        Column("daily", "array", day),
    )


def _data_source(namespace: str, uri: str | None = None) -> Any:
    from openlineage.client.generated.datasource_dataset import DatasourceDatasetFacet

    return DatasourceDatasetFacet(
        name=namespace, uri=uri or (namespace if "://" in namespace else f"{namespace}://")
    )


def _schema(fields: tuple[Column, ...]) -> Any:
    from airflow.providers.common.compat.openlineage.facet import SchemaDatasetFacet, SchemaDatasetFacetFields

    def convert(found: tuple[Column, ...]) -> list[Any]:
        return [
            SchemaDatasetFacetFields(
                name=column.name, type=column.type, ordinal_position=position, fields=convert(column.fields)
            )
            for position, column in enumerate(found, start=1)
        ]

    return SchemaDatasetFacet(fields=convert(fields))


def _output_dataset(output: FileOutput | TableOutput) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    if isinstance(output, FileOutput):
        namespace, name = file_dataset(output.uri)
        fields = file_fields(output.output_format)
        statistics = OutputStatisticsOutputDatasetFacet(rowCount=output.rows, size=output.size)
    else:
        from airflow_provider_zendrive._outputs.tables import REVISION_TYPES, TABLE_TYPES

        namespace, name = table_dataset(output.sql_conn_id, output.table)
        types = REVISION_TYPES if output.audit_trail else TABLE_TYPES
        fields = tuple(Column(column, kind) for column, kind in types.items())
        statistics = OutputStatisticsOutputDatasetFacet(rowCount=output.rows)
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"dataSource": _data_source(namespace), "schema": _schema(fields)},
        outputFacets={"outputStatistics": statistics},
    )


def operator_lineage(lineage: Lineage) -> OperatorLineage[Any, Any]:
    """The OpenLineage inputs and outputs of one run, with their facets."""
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    namespace, name = source_dataset(lineage.endpoint, lineage.service_id)
    source = InputDataset(
        namespace=namespace, name=name, facets={"dataSource": _data_source(namespace, lineage.endpoint)}
    )
    return OperatorLineage(inputs=[source], outputs=[_output_dataset(output) for output in lineage.outputs])
