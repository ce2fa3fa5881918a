"""
Daily rows as a typed Parquet file, for warehouse loads and lakehouse engines.

The file holds one row group with the columns of :data:`~airflow_provider_zendrive._outputs.rows.COLUMNS` plus
``fetched_at``: ``service_id`` and every counter ``int64`` (byte counts pass ``2**31`` every day), ``date``
``date32`` and ``fetched_at`` a ``timestamp[us, tz=UTC]`` (Parquet's ``isAdjustedToUTC``), none nullable.
These are the types Snowflake's ``COPY INTO`` / ``MATCH_BY_COLUMN_NAME``, BigQuery's load jobs, DuckDB and
Spark map to ``BIGINT`` / ``INT64``, ``DATE`` and a UTC timestamp without a cast. Snappy compression, which
every reader supports.

pyarrow is the optional extra ``airflow-provider-zendrive[parquet]``, imported only when a Parquet file is
checked or written; :func:`require_pyarrow` refuses before the API is called where it is missing.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive._client.models import DAILY_FIELDS

if TYPE_CHECKING:
    from airflow_provider_zendrive._outputs.rows import Row

__all__ = ["PARQUET_COLUMNS", "encode_parquet", "parquet_schema", "require_pyarrow"]

#: The columns of a Parquet file, in order: the rows' columns plus ``fetched_at``, as in the table.
PARQUET_COLUMNS: tuple[str, ...] = ("service_id", "date", *DAILY_FIELDS, "fetched_at")


def require_pyarrow() -> Any:
    """
    Import pyarrow, or refuse with the extra to install.

    :return: the ``pyarrow`` module.
    :raises ZenDriveInputError: when pyarrow is not installed.
    """
    try:
        import pyarrow
    except ImportError:
        from airflow_provider_zendrive.exceptions import ZenDriveInputError

        raise ZenDriveInputError(
            "A .parquet output needs pyarrow, which is not installed where this task runs: "
            "pip install 'airflow-provider-zendrive[parquet]' (or choose output_format csv, json or jsonl)."
        ) from None
    return pyarrow


def parquet_schema() -> Any:
    """The ``pyarrow.Schema`` of the file (see the module docstring)."""
    pa = require_pyarrow()
    types = {"date": pa.date32(), "fetched_at": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [pa.field(name, types.get(name, pa.int64()), nullable=False) for name in PARQUET_COLUMNS]
    )


def encode_parquet(rows: list[Row], *, fetched_at: datetime.datetime) -> bytes:
    """
    Encode ``rows`` as one Parquet file.

    :param rows: the rows from :func:`~airflow_provider_zendrive._outputs.rows.daily_rows`.
    :param fetched_at: when the numbers were read (any time zone; stored in UTC).
    """
    pa = require_pyarrow()
    import pyarrow.parquet as pq

    stamp = fetched_at.astimezone(datetime.UTC)
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in PARQUET_COLUMNS[:-1]}
    columns["date"] = [datetime.date.fromisoformat(str(day)) for day in columns["date"]]
    columns["fetched_at"] = [stamp] * len(rows)
    table = pa.Table.from_pydict(columns, schema=parquet_schema())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return bytes(sink.getvalue().to_pybytes())
