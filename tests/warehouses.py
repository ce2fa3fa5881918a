"""
The warehouses the table contract runs on (the ``warehouse`` fixture of ``tests/operators/conftest.py``): a
SQLite file, a database on a throwaway PostgreSQL server, one on a throwaway MariaDB server, each reached
through its official Airflow provider's hook, as users reach theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zendrive_expected import COLUMNS

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

#: What ``warehouse`` is parametrized over, by the name of its kind.
KINDS = ("sqlite", "postgresql", "mariadb")


@dataclass(frozen=True)
class Warehouse:
    """
    One empty warehouse for one test.

    :param kind: one of :data:`KINDS`.
    :param conn_id: the Airflow connection to it.
    """

    kind: str
    conn_id: str

    def hook(self) -> DbApiHook:
        """A new hook of the connection, as each task gets one."""
        from airflow_provider_zendrive._outputs.tables import get_db_hook

        return get_db_hook(self.conn_id)

    def records(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query (``{mark}`` in ``sql`` becomes the driver's placeholder)."""
        hook = self.hook()
        return [tuple(row) for row in hook.get_records(sql.format(mark=hook.placeholder), parameters)]

    def run(self, *statements: str) -> None:
        """Run statements and commit."""
        self.hook().run(list(statements))

    def rows(self, table: str = "zendrive_daily_usage", *, fetched_at: bool = False) -> list[tuple[Any, ...]]:
        """
        Every row in :data:`~zendrive_expected.COLUMNS` order (plus ``fetched_at`` if asked) by service and
        day, the date as ``YYYY-MM-DD`` and the counters as ints whatever the driver returns.
        """
        names = [*COLUMNS, "fetched_at"] if fetched_at else list(COLUMNS)
        select = f"SELECT {', '.join(names)} FROM {table} ORDER BY service_id, date"  # noqa: S608
        return [
            (
                int(row[0]),
                str(row[1])[:10],
                *(int(value) for value in row[2 : len(COLUMNS)]),
                *row[len(COLUMNS) :],
            )
            for row in self.records(select)
        ]

    def column_types(self, table: str) -> dict[str, str]:
        """``{column: its type, lower case}`` as the database reports them."""
        if self.kind == "sqlite":
            return {str(r[1]): str(r[2]).lower() for r in self.records(f"PRAGMA table_info({table})")}
        schema = "current_schema()" if self.kind == "postgresql" else "DATABASE()"
        columns = "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        query = columns + schema + " AND table_name = {mark}"
        return {str(r[0]): str(r[1]).lower() for r in self.records(query, (table,))}
