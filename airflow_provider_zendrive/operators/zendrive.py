"""
The ZenDRIVE operators: usage statistics to XCom, to a file anywhere, or to any SQL table; and budget alerts
from that table.

Importing this module is cheap: the hook (``httpx``), common-sql and ObjectStoragePath are imported when a
task runs, and nothing touches the network or a connection while a DAG is parsed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink

from airflow_provider_zendrive._client import DEFAULT_CONN_ID
from airflow_provider_zendrive._client.windows import LONGEST_PULL_DAYS, DateWindow, choose_window
from airflow_provider_zendrive._outputs.rows import OutputFormat, Row, daily_rows, encode, resolve_format
from airflow_provider_zendrive._outputs.summary import VolumeUnit, usage_summary
from airflow_provider_zendrive._text import plural
from airflow_provider_zendrive.exceptions import ZenDriveInputError

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Asset, Context
    from airflow.sdk.definitions.retry_policy import RetryPolicy
    from airflow.sdk.types import TaskInstanceKey

    from airflow_provider_zendrive._client.models import UsageStats
    from airflow_provider_zendrive._client.windows import DateLike
    from airflow_provider_zendrive._outputs.budget import Crossing
    from airflow_provider_zendrive._outputs.fleet import FleetProgress, PerThread, ServiceDone
    from airflow_provider_zendrive._outputs.lineage import Lineage
    from airflow_provider_zendrive._outputs.tables import TableWrite
    from airflow_provider_zendrive.exceptions import ZenDriveError
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

__all__ = [
    "DASHBOARD_URL",
    "RunPlan",
    "ZenDriveBudgetAlertOperator",
    "ZenDriveDashboardLink",
    "ZenDriveFleetStatsOperator",
    "ZenDriveStatsOperator",
    "file_asset",
    "table_asset",
    "table_asset_uri",
]

#: Where a ZenDRIVE customer sees the same numbers in a browser.
DASHBOARD_URL = "https://dashboard.clearstreamer.com/"


def table_asset_uri(sql_conn_id: str, table: str) -> str:
    """The URI of the Asset a table output is published as: ``x-zendrive-table://<sql_conn_id>/<table>``."""
    return f"x-zendrive-table://{sql_conn_id}/{table}"


def table_asset(sql_conn_id: str, table: str) -> Asset:
    """
    The Asset a table output is published as; declare this one wherever a DAG names the table.

    Its name is its URI (:func:`table_asset_uri`), which is also what a plain ``Asset(uri=...)`` gets: the
    operator's automatic outlet, this helper and a user's ``Asset(uri=...)`` are one asset, so DAGs that write
    or read the same table never clash ("uri is already associated to ...").

    :param sql_conn_id: the SQL connection id.
    :param table: the table, ``[schema.]name``.
    """
    from airflow.sdk import Asset

    uri = table_asset_uri(sql_conn_id, table)
    return Asset(name=uri, uri=uri)


def file_asset(output_path: str) -> Asset:
    """
    The Asset a file output is published as: named by its URI (``file:///abs/path`` for a local path).

    :param output_path: a local path or an object-storage URI, as given to the operator.
    """
    from airflow.sdk import Asset

    from airflow_provider_zendrive._outputs.files import output_uri

    uri = output_uri(output_path)
    return Asset(name=uri, uri=uri)


def default_retry_policy() -> RetryPolicy | None:
    """A :class:`~airflow_provider_zendrive.retry_policy.ZenDriveRetryPolicy`, or None on Airflow < 3.3."""
    try:
        from airflow_provider_zendrive.retry_policy import ZenDriveRetryPolicy
    except ImportError:
        return None
    return ZenDriveRetryPolicy()


@dataclass(frozen=True)
class RunPlan:
    """
    What one :class:`ZenDriveStatsOperator` run will do, checked before any request.

    :param window: the window to pull (None: the API default).
    :param why: why that window, for the log.
    :param fmt: the file format (None: no file).
    :param db_hook: the table's database hook (None: no table).
    """

    window: DateWindow | None
    why: str
    fmt: OutputFormat | None
    db_hook: DbApiHook | None


class ZenDriveDashboardLink(BaseOperatorLink):
    """A button on the task that opens the ZenDRIVE dashboard."""

    name = "ZenDRIVE dashboard"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the dashboard URL (the same for every task instance)."""
        return DASHBOARD_URL


class ZenDriveStatsOperator(BaseOperator):
    """
    Pull ZenDRIVE usage statistics for a window of UTC days; return them, and optionally write them out.

    The return value (XCom ``return_value``) is the hook's stats dict, shaped like the API's response. Every run
    also pushes the XCom ``summary``: a short text for people (the first line fits an email subject; requests,
    success rate, GB sent and received, days without traffic, revised rows), logged as one INFO line and ready
    for any notifier, e.g. ``SmtpNotifier(subject="{{ ti.xcom_pull(task_ids='pull', key='summary') }}")``. With
    ``output_path`` the stats are also written to a file, with ``sql_conn_id`` upserted into a table; both may
    be combined. Everything that can be checked (dates, format, SQL connection, table name) is checked before
    the API is called.

    **Window.** Explicit ``from_date`` / ``to_date`` win. Otherwise a run with a non-empty data interval
    ``[start, end)`` pulls ``start.date() .. (end - 1 day).date()`` (at least ``start``'s day); a run with an
    empty interval (Airflow 3's default ``CronTriggerTimetable``, e.g. ``@daily``) pulls the single UTC day
    before its logical date; a run without a logical date lets the API default apply (the last 30 days).

    **Files.** CSV and JSON Lines hold one row per day (columns ``service_id, date, total_requests,
    successful_requests, client_errors, auth_failures, bytes_sent, bytes_received, unique_ips``); JSON holds the
    stats dict; Parquet holds the rows typed (``int64`` numbers, ``date32`` days) plus ``fetched_at`` (UTC) and
    needs the ``parquet`` extra (pyarrow), checked before any request. Writes are atomic (temp file + rename
    locally, one ``put`` on object storage).

    **Tables.** One row per day plus ``fetched_at``, primary key ``(service_id, date)``, upserted in one
    transaction: reruns and overlapping windows update rows in place. See :mod:`airflow_provider_zendrive._outputs.tables`.
    With both outputs the file is written first, then the table: if the table write fails, the new (complete)
    file stays, the table is unchanged, the task fails and no asset event is emitted; a retry rewrites both.

    **Assets.** Unless ``outlets`` is given, a literal (untemplated) ``output_path`` is declared as an outlet
    Asset with the file's URI (``file:///abs/path`` for a local path, else the URI as given), and a literal
    ``sql_conn_id`` / ``table`` as ``x-zendrive-table://<sql_conn_id>/<table>``; downstream DAGs can be
    scheduled on them. Each event carries ``from``, ``to`` and ``rows`` in its extra.

    **Retries.** On Airflow 3.3+ the task gets :class:`~airflow_provider_zendrive.retry_policy.ZenDriveRetryPolicy`
    unless ``retry_policy`` is given (in the task or in ``default_args``): bad keys, bad requests, bad bodies,
    bad input and a suspended service fail at once; a 429 retries after ``Retry-After``. On older Airflow there
    is no policy and every failure uses ``retries``. A mapped task (``.partial(...).expand(...)``) is given
    ``retry_policy=None`` by Airflow itself, which counts as given: name the policy in ``partial`` or in
    ``default_args`` (``retry_policy=default_retry_policy()``, as ``zendrive_fleet`` does).

    :param zendrive_conn_id: the ZenDRIVE connection (templated).
    :param from_date: first UTC day: a date, datetime or ``YYYY-MM-DD`` string (templated).
    :param to_date: last UTC day, included; same forms (templated).
    :param output_path: a local path or any URI ObjectStoragePath understands (templated).
    :param output_format: ``csv``, ``json``, ``jsonl``, ``ndjson`` or ``parquet``; default: from the path's
        suffix.
    :param output_conn_id: the connection for object storage (``aws_default``, ...).
    :param sql_conn_id: a connection whose hook is a common-sql ``DbApiHook`` (templated).
    :param table: the table, ``[schema.]name`` (templated).
    :param create_table: create the table (and ``revisions_table``) if it does not exist.
    :param revisions_table: an optional audit trail next to ``table``, ``[schema.]name`` (templated): every
        counter a write changes in a row that already existed is appended there (service, day, counter, old and
        new value, when, and which task run), in the same transaction as the upsert. None (default): revisions
        are only logged and counted in the asset event.
    :param fill_missing_days: write a zero row for each day the API omits (no traffic).
    :param lookback_days: start the chosen window (explicit dates or the run's) this many days earlier, so the
        days before are read again and late-arriving numbers corrected; still one request per 366 days
        (templated; default 0).
    :param summary_unit: the volume unit of the run's summary: ``"GB"`` (decimal, as the vendor bills; default)
        or ``"GiB"``.
    :param max_pull_days: the longest window accepted (default 3,660 days, ten requests); a longer one fails
        before any request, as it is usually a typo in a year. Raise it to load a longer history on purpose.
    """

    template_fields: Sequence[str] = (
        "zendrive_conn_id",
        "from_date",
        "to_date",
        "output_path",
        "sql_conn_id",
        "table",
        "revisions_table",
        "lookback_days",
    )
    ui_color = "#1f6feb"
    ui_fgcolor = "#ffffff"
    operator_extra_links: ClassVar[tuple[BaseOperatorLink, ...]] = (ZenDriveDashboardLink(),)  # type: ignore[misc]

    def __init__(
        self,
        *,
        zendrive_conn_id: str = DEFAULT_CONN_ID,
        from_date: DateLike | None = None,
        to_date: DateLike | None = None,
        output_path: str | None = None,
        output_format: str | None = None,
        output_conn_id: str | None = None,
        sql_conn_id: str | None = None,
        table: str = "zendrive_daily_usage",
        create_table: bool = True,
        revisions_table: str | None = None,
        fill_missing_days: bool = True,
        max_pull_days: int = LONGEST_PULL_DAYS,
        lookback_days: int | str = 0,
        summary_unit: VolumeUnit = "GB",
        **kwargs: Any,
    ) -> None:
        defaults = kwargs.get("default_args") or {}
        if "retry_policy" not in kwargs and "retry_policy" not in defaults:
            policy = default_retry_policy()
            if policy is not None:
                kwargs["retry_policy"] = policy
        if "outlets" not in kwargs and "outlets" not in defaults:
            outlets = _literal_outlets(output_path, sql_conn_id, table)
            if outlets:
                kwargs["outlets"] = outlets
        super().__init__(**kwargs)
        if output_format is not None:
            resolve_format("", output_format)
        if _literal(output_path):
            from airflow_provider_zendrive._outputs.files import refuse_relative

            refuse_relative(str(output_path))
        self.zendrive_conn_id = zendrive_conn_id
        self.from_date = from_date
        self.to_date = to_date
        self.output_path = output_path
        self.output_format = output_format
        self.output_conn_id = output_conn_id
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.create_table = create_table
        self.revisions_table = revisions_table
        self.fill_missing_days = fill_missing_days
        if isinstance(max_pull_days, bool) or not isinstance(max_pull_days, int) or max_pull_days < 1:
            raise ValueError(f"max_pull_days must be a positive number of days, got {max_pull_days!r}")
        self.max_pull_days = max_pull_days
        if not isinstance(lookback_days, str):  # a template is checked once rendered
            _lookback(lookback_days)
        self.lookback_days = lookback_days
        if summary_unit not in ("GB", "GiB"):
            raise ValueError(f"summary_unit must be 'GB' or 'GiB', got {summary_unit!r}")
        self.summary_unit: VolumeUnit = summary_unit
        #: What the current run read and wrote so far, for OpenLineage (None before the API answered).
        self.lineage: Lineage | None = None

    @cached_property
    def hook(self) -> ZenDriveStatsHook:
        """The ZenDRIVE hook (created on first use, never while parsing)."""
        from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

        return ZenDriveStatsHook(zendrive_conn_id=self.zendrive_conn_id)

    def execute(self, context: Context) -> UsageStats:
        """
        Check the input, pull the stats, write the outputs and return the stats: :meth:`plan` (every check,
        before any request), :meth:`pull`, :meth:`write`, :meth:`publish`.
        """
        plan = self.plan(context)
        stats = self.pull(plan)
        written = self.write(plan, stats, context)
        self.publish(context, plan, stats, written)
        return stats

    def plan(self, context: Context) -> RunPlan:
        """
        Everything this run will do, checked before any request: the window, the file format and path, the
        table targets.

        :raises ZenDriveInputError: on bad dates, a bad output path or format, or a bad table name.
        """
        window, why = self.resolve_window(context)
        fmt = None
        if self.output_path:
            from airflow_provider_zendrive._outputs.files import check_output_path

            fmt = resolve_format(self.output_path, self.output_format)
            check_output_path(self.output_path, fmt, conn_id=self.output_conn_id)
        if self.revisions_table and (not self.sql_conn_id or self.revisions_table == self.table):
            raise ZenDriveInputError(
                f"revisions_table={self.revisions_table!r} needs sql_conn_id and a table of its own, next to "
                f"table={self.table!r}."
            )
        db_hook = None
        if self.sql_conn_id:
            from airflow_provider_zendrive._outputs.tables import check_table_target, get_db_hook

            db_hook = get_db_hook(self.sql_conn_id)
            check_table_target(db_hook, self.table)
            if self.revisions_table:
                check_table_target(db_hook, self.revisions_table)
        return RunPlan(window, why, fmt, db_hook)

    def pull(self, plan: RunPlan) -> UsageStats:
        """Fetch the plan's window (the hook chunks and merges it)."""
        if plan.window is None:
            self.log.info("ZenDRIVE window: the API default (last 30 days), %s.", plan.why)
        else:
            self.log.info(
                "ZenDRIVE window: %s (%s), %s.", plan.window, plural(plan.window.days, "day"), plan.why
            )
        from airflow_provider_zendrive._outputs.lineage import Lineage

        stats = self.hook.get_window_stats(plan.window)
        self.lineage = Lineage(endpoint=self.hook.settings.url, service_id=int(stats["service_id"]))
        return stats

    def write(self, plan: RunPlan, stats: UsageStats, context: Context) -> dict[str, dict[str, int]]:
        """
        Write the file and/or upsert the table; each output joins :attr:`lineage` once it is complete.

        :return: what was written, by asset URI: ``{"rows": n}``, plus ``"revised"`` for a table.
        """
        rows = daily_rows(stats, fill_missing_days=self.fill_missing_days)
        written: dict[str, dict[str, int]] = {}
        if self.output_path and plan.fmt is not None:
            written.update(self._write_file(self.output_path, plan.fmt, stats, rows))
        if plan.db_hook is not None and self.sql_conn_id:
            label = f"service {stats['service_id']}"
            written.update(
                self._upsert(
                    plan.db_hook, self.sql_conn_id, rows, context, label, create_table=self.create_table
                )
            )
        return written

    def _write_file(
        self, output_path: str, fmt: OutputFormat, stats: UsageStats, rows: list[Row]
    ) -> dict[str, dict[str, int]]:
        from airflow_provider_zendrive._outputs.files import write_atomically
        from airflow_provider_zendrive._outputs.lineage import FileOutput

        data = encode(fmt, stats, rows)
        uri = write_atomically(output_path, data, conn_id=self.output_conn_id)
        count = len(rows) if fmt != "json" else len(stats["daily"])
        self.log.info("Wrote %s (%s, %s, %s).", uri, fmt, plural(count, "row"), plural(len(data), "byte"))
        if self.lineage is not None:
            self.lineage.outputs.append(FileOutput(uri, fmt, count, len(data)))
        return {uri: {"rows": count}}

    def _upsert(
        self,
        db_hook: DbApiHook,
        sql_conn_id: str,
        rows: list[Row],
        context: Context,
        label: str,
        *,
        create_table: bool,
        after_write: Callable[[Any, TableWrite], None] | None = None,
    ) -> dict[str, dict[str, int]]:
        """Upsert one service's rows in one transaction (``after_write`` joins it), log it, note the lineage."""
        from airflow_provider_zendrive._outputs.tables import describe_revision, upsert_rows

        result = upsert_rows(
            db_hook,
            self.table,
            rows,
            create_table=create_table,
            revisions_table=self.revisions_table or None,
            revised_by=_run_label(context),
            after_write=after_write,
        )
        self.log.info(
            "Upserted %s of %s into table %s (connection %r); %s.",
            plural(result.rows, "row"),
            label,
            self.table,
            sql_conn_id,
            f"{plural(len(result.revisions), 'day')} revised" if result.revisions else "no day revised",
        )
        for revision in result.revisions:
            self.log.warning("%s", describe_revision(revision))
        if self.lineage is not None:
            from airflow_provider_zendrive._outputs.lineage import TableOutput

            self.lineage.outputs.append(TableOutput(sql_conn_id, self.table, result.rows))
            if self.revisions_table:
                appended = sum(len(revision.changes) for revision in result.revisions)
                self.lineage.outputs.append(
                    TableOutput(sql_conn_id, self.revisions_table, appended, audit_trail=True)
                )
        return {
            table_asset_uri(sql_conn_id, self.table): {"rows": result.rows, "revised": len(result.revisions)}
        }

    def publish(
        self, context: Context, plan: RunPlan, stats: UsageStats, written: dict[str, dict[str, int]]
    ) -> None:
        """Tell the world: the outlet events and the summary (log and XCom ``summary``)."""
        self._annotate_outlets(context, stats, written)
        table_uri = table_asset_uri(self.sql_conn_id, self.table) if self.sql_conn_id else None
        revised = written[table_uri]["revised"] if table_uri in written else None
        self._push_summary(context, usage_summary(stats, revised=revised, unit=self.summary_unit))

    def _push_summary(self, context: Context, summary: str) -> None:
        """Log the run's summary (one INFO record) and push it as the XCom ``summary``, for notifiers."""
        self.log.info("%s", summary)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="summary", value=summary)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """
        The OpenLineage inputs and outputs of the run that just succeeded, for the OpenLineage provider: the
        ZenDRIVE usage API of the service read, and the file and/or table written (see
        :mod:`airflow_provider_zendrive._outputs.lineage` for the names). Costs nothing where that provider is
        not installed: it is the only caller.

        :param task_instance: the finished task instance (unused: the run kept what it read and wrote).
        """
        if self.lineage is None:
            return None
        from airflow_provider_zendrive._outputs.lineage import operator_lineage

        return operator_lineage(self.lineage)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """
        The OpenLineage inputs and outputs of the run that just failed: what it read, and only the outputs it
        finished writing (without this the provider would list the declared outlets, written or not).

        :param task_instance: the failed task instance (unused).
        """
        from airflow_provider_zendrive._outputs.lineage import Lineage, operator_lineage

        return operator_lineage(self.lineage or Lineage(endpoint=self.hook.settings.url))

    def resolve_window(self, context: Context) -> tuple[DateWindow | None, str]:
        """
        Choose the window of this run, and say why (see :func:`~airflow_provider_zendrive._client.windows.choose_window`).

        :param context: the task context (data interval and logical date).
        :return: the window (None: the API default) and the reason, for the log.
        :raises ZenDriveInputError: on unparsable dates or ``from_date`` after ``to_date``.
        """
        return choose_window(
            from_date=self.from_date,
            to_date=self.to_date,
            data_interval_start=context.get("data_interval_start"),
            data_interval_end=context.get("data_interval_end"),
            logical_date=context.get("logical_date"),
            lookback_days=_lookback(self.lookback_days),
            max_days=self.max_pull_days,
        )

    def _annotate_outlets(
        self, context: Context, stats: UsageStats, written: dict[str, dict[str, int]]
    ) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets:
            uri = getattr(outlet, "uri", None)
            if uri in written:
                events[outlet].extra.update({"from": stats["from"], "to": stats["to"], **written[uri]})


class ZenDriveFleetStatsOperator(ZenDriveStatsOperator):
    """
    Pull the usage of a batch of ZenDRIVE services, each with its own connection, into one table.

    One task does what a :class:`ZenDriveStatsOperator` mapped over the connections would, for every
    connection in ``conn_ids``: the same window, checks, upsert, revisions and summary, but the services are
    pulled by up to ``max_concurrency`` threads of one process, so a fleet pays one task's start-up per batch
    instead of per service. Map it over batches of connection ids to stay under Airflow's
    ``[core] max_map_length`` (see ``zendrive_fleet`` and the scaling guide for the batch size).

    **Each service on its own.** Each service gets its own hook and HTTPS connection, so its own key's pace
    and retries; its rows are upserted in a transaction of their own (on a database connection of its
    thread), so a service that fails (bad keys, suspended, the API down for it, a database error) does not
    hold back or roll back the others. Once every service has been tried, the task fails if any failed, naming
    each with its error (the provider's errors never hold a secret key):
    :class:`~airflow_provider_zendrive.exceptions.ZenDriveFleetError` when each failed on a final error (the
    retry policy then fails the task at once: fix the keys or wait for the service, then clear the task), or
    :class:`~airflow_provider_zendrive.exceptions.ZenDriveFleetRetryableError` when at least one may succeed on
    a retry (the task's ``retries`` apply).

    **A retry pulls only the failed services.** Airflow clears a task's XComs at each new try, so the
    progress is kept in the warehouse: a ledger table (``progress_table``) gets one row per service, in the
    same transaction as that service's rows; a later try of the same task instance (same DAG run and map
    index) skips the services it lists and reports them as written. When every service of the batch is done
    the task deletes its run's rows, so the ledger holds unfinished runs only and clearing a successful task
    pulls the whole batch again (see the scaling guide).

    **What people see.** One log line per service written (``Upserted ... of <conn_id> (service N) ...``),
    its summary (as :class:`ZenDriveStatsOperator` logs it), one ERROR line per failed service; the XCom
    ``summary`` (a headline for the batch, then one line per service); one event on the table's Asset per
    successful batch, with ``from``, ``to``, ``rows``, ``revised`` and ``services`` (a list of ``conn_id``,
    ``service_id``, ``rows``, ``revised``, ``try``: the try that wrote it) in its extra. The return value
    (XCom) maps each conn id to its ``service_id``, ``rows`` and ``revised``.

    Table output only: ``output_path``, ``output_format`` and ``output_conn_id`` are refused when the DAG is
    parsed, and so is ``zendrive_conn_id`` (use ``conn_ids``). No OpenLineage facets are reported for a batch.
    Every other argument is :class:`ZenDriveStatsOperator`'s.

    :param conn_ids: the ZenDRIVE connections of the batch, each once (templated; a list, or mapped).
    :param sql_conn_id: the warehouse's connection (templated).
    :param max_concurrency: the most services pulled at once in this task (threads; default 8). Each holds an
        HTTPS connection and, while it writes, a database connection.
    :param progress_table: the progress ledger next to ``table`` (created if missing; templated); None: no
        ledger, and a retry pulls the whole batch again.
    """

    template_fields: Sequence[str] = (
        "conn_ids",
        "from_date",
        "to_date",
        "sql_conn_id",
        "table",
        "revisions_table",
        "progress_table",
        "lookback_days",
    )

    def __init__(
        self,
        *,
        conn_ids: Sequence[str] | str,
        sql_conn_id: str,
        max_concurrency: int = 8,
        progress_table: str | None = "zendrive_fleet_progress",
        **kwargs: Any,
    ) -> None:
        refused = sorted({"zendrive_conn_id", "output_path", "output_format", "output_conn_id"} & set(kwargs))
        if refused:
            raise ValueError(
                f"ZenDriveFleetStatsOperator writes a table only and takes its services from conn_ids; "
                f"remove {', '.join(refused)} (use ZenDriveStatsOperator for files)."
            )
        super().__init__(sql_conn_id=sql_conn_id, **kwargs)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a positive number of threads, got {max_concurrency!r}")
        if not isinstance(conn_ids, str):  # a template (or an XComArg) is checked once rendered
            _fleet_conn_ids(conn_ids)
        self.conn_ids = conn_ids
        self.max_concurrency = max_concurrency
        self.progress_table = progress_table

    def execute(self, context: Context) -> dict[str, dict[str, int]]:  # type: ignore[override]
        """
        A batch returns counts by connection, not one service's stats. Check everything, skip the services an earlier try wrote, pull and write the others in threads, then
        publish the batch, or fail naming the services that failed.
        """
        from airflow_provider_zendrive._outputs.fleet import FleetProgress, PerThread, run_bounded
        from airflow_provider_zendrive._outputs.tables import get_db_hook
        from airflow_provider_zendrive.hooks.zendrive import (
            ZenDriveStatsHook,
        )  # imported once, not per thread

        conn_ids = _fleet_conn_ids(self.conn_ids)
        plan = self.plan(context)
        if plan.db_hook is None or not self.sql_conn_id:
            raise ZenDriveInputError("ZenDriveFleetStatsOperator needs sql_conn_id.")
        run = _run_label(context, with_try=False)
        progress = None
        if self.progress_table and run:
            if self.progress_table in (self.table, self.revisions_table):
                raise ZenDriveInputError(
                    f"progress_table={self.progress_table!r} must be a table of its own."
                )
            progress = FleetProgress(plan.db_hook, self.progress_table, run)
        self._create_tables(plan.db_hook, progress)
        earlier = progress.done() if progress is not None else {}
        todo = [conn_id for conn_id in conn_ids if conn_id not in earlier]
        self.log.info(
            "ZenDRIVE fleet batch: %s; %d written by an earlier try of this run, pulling %d, at most %d at once.",
            plural(len(conn_ids), "service"),
            len(conn_ids) - len(todo),
            len(todo),
            self.max_concurrency,
        )
        self.pull_window_line(plan)
        sql_conn_id = self.sql_conn_id
        db_hooks: PerThread[DbApiHook] = PerThread(lambda: get_db_hook(sql_conn_id))

        def pull_one(conn_id: str) -> tuple[ServiceDone, str]:
            stats = ZenDriveStatsHook(zendrive_conn_id=conn_id).get_window_stats(plan.window)
            return self._write_service(conn_id, stats, db_hooks, progress, context)

        outcomes = run_bounded(todo, pull_one, self.max_concurrency, name="zendrive-fleet")
        written = {outcome.item: outcome.result for outcome in outcomes if outcome.result is not None}
        failed = {outcome.item: outcome.error for outcome in outcomes if outcome.error is not None}
        lines = {conn_id: headline for conn_id, (_, headline) in written.items()}
        lines.update({conn_id: f"{conn_id}: written by an earlier try" for conn_id in earlier})
        lines.update(
            {conn_id: f"{conn_id}: FAILED, {_error_text(error)}" for conn_id, error in failed.items()}
        )
        done = {**earlier, **{conn_id: result for conn_id, (result, _) in written.items()}}
        self._push_summary(context, _batch_summary(conn_ids, done, failed, lines))
        if failed:
            for conn_id, error in failed.items():
                self.log.error("ZenDRIVE fleet: %s failed: %s", conn_id, _error_text(error))
            raise _fleet_error(conn_ids, done, failed)
        if progress is not None:
            progress.forget()
        try_number = getattr(context.get("ti"), "try_number", None)
        self._annotate_batch(context, plan, done, dict.fromkeys(written, try_number))
        return {
            c: {"service_id": d.service_id, "rows": d.rows, "revised": d.revised} for c, d in done.items()
        }

    def _create_tables(self, db_hook: DbApiHook, progress: FleetProgress | None) -> None:
        """Create the missing tables once for the batch (each service's upsert then runs no DDL)."""
        from airflow_provider_zendrive._outputs.tables import (
            connection,
            create_revisions_table_sql,
            create_table_sql,
            create_tables,
            quote_table,
        )

        fmt = db_hook.escape_word_format
        ddl: dict[str, str] = {}
        if self.create_table:
            quoted = quote_table(self.table, fmt)
            ddl[quoted] = create_table_sql(quoted, fmt)
            if self.revisions_table:
                quoted_revisions = quote_table(self.revisions_table, fmt)
                ddl[quoted_revisions] = create_revisions_table_sql(quoted_revisions, fmt)
        if progress is not None:
            ddl.update(progress.ddl())
        if ddl:
            with connection(db_hook) as conn:
                create_tables(conn, db_hook, ddl)

    def _write_service(
        self,
        conn_id: str,
        stats: UsageStats,
        db_hooks: PerThread[DbApiHook],
        progress: FleetProgress | None,
        context: Context,
    ) -> tuple[ServiceDone, str]:
        """One service's rows in one transaction (with its progress mark), its log lines and summary."""
        from airflow_provider_zendrive._outputs.fleet import ServiceDone

        service_id = int(stats["service_id"])
        rows = daily_rows(stats, fill_missing_days=self.fill_missing_days)
        written = self._upsert(
            db_hooks.get(),
            str(self.sql_conn_id),
            rows,
            context,
            f"{conn_id} (service {service_id})",
            create_table=False,
            after_write=None if progress is None else progress.mark(conn_id, service_id),
        )
        (counts,) = written.values()
        summary = usage_summary(stats, revised=counts["revised"], unit=self.summary_unit)
        self.log.info("%s: %s", conn_id, summary)
        return ServiceDone(
            conn_id, service_id, counts["rows"], counts["revised"]
        ), f"{conn_id}: {summary.splitlines()[0]}"

    def pull_window_line(self, plan: RunPlan) -> None:
        """Log the batch's window once (every service pulls the same)."""
        if plan.window is None:
            self.log.info("ZenDRIVE window: the API default (last 30 days), %s.", plan.why)
        else:
            self.log.info(
                "ZenDRIVE window: %s (%s), %s.", plan.window, plural(plan.window.days, "day"), plan.why
            )

    def _annotate_batch(
        self, context: Context, plan: RunPlan, done: dict[str, ServiceDone], tries: dict[str, int | None]
    ) -> None:
        events = context.get("outlet_events")
        if events is None or not self.sql_conn_id:
            return
        uri = table_asset_uri(self.sql_conn_id, self.table)
        window = plan.window
        extra: dict[str, Any] = {
            "from": None if window is None else window.start.isoformat(),
            "to": None if window is None else window.end.isoformat(),
            "rows": sum(d.rows for d in done.values()),
            "revised": sum(d.revised for d in done.values()),
            "services": [
                {
                    "conn_id": d.conn_id,
                    "service_id": d.service_id,
                    "rows": d.rows,
                    "revised": d.revised,
                    "try": tries.get(d.conn_id),
                }
                for d in done.values()
            ],
        }
        for outlet in self.outlets:
            if getattr(outlet, "uri", None) == uri:
                events[outlet].extra.update(extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """None: a batch reports no OpenLineage facets (its services are many inputs of one table).

        :param task_instance: unused.
        """
        return None

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any] | None:
        """None, as on completion.

        :param task_instance: unused.
        """
        return None


class ZenDriveBudgetAlertOperator(BaseOperator):
    """
    Tell people, once, when a service's month-to-date egress crosses a threshold of its monthly budget.

    Reads the daily ``bytes_sent`` that :class:`ZenDriveStatsOperator` wrote to ``table`` (no API request), finds
    each threshold crossed in the newest month of the table and the month before, and calls ``notifiers`` for
    each crossing not alerted before. A ledger table (``alerts_table``, one row per service, month and
    threshold) makes that once: each crossing is claimed and committed on its own, around its own
    notification, so reruns, retries, backfills and late-data re-reads never repeat an alert that went out,
    and a notifier that fails leaves only that alert to the retry (the others are still sent; the task then
    fails naming what was not delivered). A crash between a notifier returning and its claim's commit can
    repeat that one alert: at least once, with a stable identity to recognise the repeat (see
    :mod:`airflow_provider_zendrive._outputs.budget`). Schedule it on the table's Asset
    (``schedule=[table_asset(...)]``) to check after every load.

    Each notifier is called with the task context plus ``zendrive_alert`` (the alert's text: a headline, then
    the numbers, then its id), ``zendrive_alert_id`` (``zendrive-budget.<service>.<month>.<threshold>``, the
    same for every repeat: a key for a chat webhook), ``zendrive_alert_message_id`` (that id as an email
    ``Message-ID``) and ``zendrive_crossing`` (its fields), so templates can say
    ``subject="{{ zendrive_alert.splitlines()[0] }}"``. The texts of the alerts sent are returned (XCom).

    :param sql_conn_id: the connection of the warehouse table (templated).
    :param table: the table the stats operator writes (templated).
    :param budget_gb: the monthly egress budget in decimal GB, for every service, or ``{service_id: GB}``
        (services not in it are not watched). None (the default): the ``[zendrive] budget_gb`` option, read when
        the task runs (the usage page shows the same budget).
    :param thresholds: percentages of the budget that alert, e.g. ``(50, 80, 100)``.
    :param alerts_table: the ledger table, next to ``table`` (created if missing; templated).
    :param notifiers: what to call for each new crossing (any Airflow notifier, or a callable taking the context).
    """

    template_fields: Sequence[str] = ("sql_conn_id", "table", "alerts_table")

    def __init__(
        self,
        *,
        sql_conn_id: str,
        budget_gb: float | dict[int | str, float] | None = None,
        thresholds: Sequence[int] = (50, 80, 100),
        table: str = "zendrive_daily_usage",
        alerts_table: str = "zendrive_budget_alerts",
        notifiers: Sequence[Any] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_zendrive._outputs.budget import budgets_in_bytes, check_thresholds

        self.thresholds = check_thresholds(thresholds)
        if budget_gb is not None:
            budgets_in_bytes(budget_gb)  # refused now, not at run time
        self.budget_gb = budget_gb
        self.sql_conn_id = sql_conn_id
        self.table = table
        self.alerts_table = alerts_table
        self.notifiers = list(notifiers)
        if not self.notifiers:
            raise ValueError(
                "ZenDriveBudgetAlertOperator needs at least one notifier: an alert is claimed once, when sent."
            )

    def execute(self, context: Context) -> list[str]:
        """Find the crossings in the table, notify the new ones, and return their texts."""
        from airflow_provider_zendrive._config import configured_budget_gb
        from airflow_provider_zendrive._outputs.budget import (
            budgets_in_bytes,
            find_crossings,
            notify_new_crossings,
            read_month_to_date,
        )
        from airflow_provider_zendrive._outputs.tables import get_db_hook

        if self.alerts_table == self.table:
            raise ZenDriveInputError(f"alerts_table must not be the usage table {self.table!r}.")
        budget_gb = self.budget_gb if self.budget_gb is not None else configured_budget_gb()
        if budget_gb is None:
            raise ZenDriveInputError(
                "No budget: pass budget_gb to ZenDriveBudgetAlertOperator or set [zendrive] budget_gb "
                "(AIRFLOW__ZENDRIVE__BUDGET_GB), the budget the usage page shows too."
            )
        hook = get_db_hook(self.sql_conn_id)
        crossings = find_crossings(
            read_month_to_date(hook, self.table), budgets_in_bytes(budget_gb), self.thresholds
        )

        def notify(crossing: Crossing) -> None:
            alert_context: Any = {
                **context,
                "zendrive_alert": crossing.text,
                "zendrive_alert_id": crossing.alert_id,
                "zendrive_alert_message_id": crossing.message_id,
                "zendrive_crossing": crossing,
            }
            for notifier in self.notifiers:
                # A fresh copy per alert: a notifier renders its templates in place, once.
                copy.copy(notifier)(alert_context)

        sent = notify_new_crossings(get_db_hook(self.sql_conn_id), self.alerts_table, crossings, notify)
        for crossing in sent:
            self.log.warning("Budget alert sent: %s", crossing.text.replace("\n", " "))
        self.log.info(
            "ZenDRIVE budget: %s in the table, %s new, alerted now.",
            plural(len(crossings), "threshold crossing"),
            len(sent),
        )
        return [crossing.text for crossing in sent]


def _lookback(value: object) -> int:
    """``lookback_days`` as given or rendered: a whole number of days, 0 or more."""
    days = int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ZenDriveInputError(f"lookback_days={value!r} must be a whole number of days, 0 or more.")
    return days


def _literal(value: object) -> bool:
    """A value known while parsing: a non-empty string that is not a template (nor an XComArg)."""
    return isinstance(value, str) and bool(value) and "{{" not in value


def _literal_outlets(output_path: object, sql_conn_id: object, table: object) -> list[Asset]:
    outlets = []
    if _literal(output_path):
        outlets.append(file_asset(str(output_path)))
    if _literal(sql_conn_id) and _literal(table):
        outlets.append(table_asset(str(sql_conn_id), str(table)))
    return outlets


def _run_label(context: Context, *, with_try: bool = True) -> str:
    """
    Which task run wrote, for the audit trail: ``dag_id.task_id run run_id try N`` (``with_try=False``: the
    task instance whatever its try, as the fleet's progress ledger keys it); empty outside a task.
    """
    ti = context.get("ti")
    if ti is None:
        return ""
    index = getattr(ti, "map_index", -1)
    task = f"{ti.task_id}[{index}]" if isinstance(index, int) and index >= 0 else ti.task_id
    label = f"{ti.dag_id}.{task} run {ti.run_id}"
    return f"{label} try {ti.try_number}" if with_try else label


def _fleet_conn_ids(value: object) -> list[str]:
    """``conn_ids`` as given or rendered: a non-empty list of distinct, non-empty connection ids."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ZenDriveInputError(f"conn_ids must be a non-empty list of connection ids, got {value!r}.")
    conn_ids = list(value)
    if not all(isinstance(conn_id, str) and conn_id for conn_id in conn_ids):
        raise ZenDriveInputError(f"conn_ids must hold non-empty strings only, got {conn_ids!r}.")
    if len(set(conn_ids)) != len(conn_ids):
        twice = sorted({conn_id for conn_id in conn_ids if conn_ids.count(conn_id) > 1})
        raise ZenDriveInputError(f"conn_ids lists {', '.join(map(repr, twice))} more than once.")
    return conn_ids


def _error_text(error: BaseException, most: int = 300) -> str:
    """One failed service's error for a message: the provider's (already redacted) text, or the type and text."""
    from airflow_provider_zendrive.exceptions import ZenDriveError

    text = f"{type(error).__name__}: {error.message if isinstance(error, ZenDriveError) else error}"
    return text if len(text) <= most else text[: most - 3] + "..."


def _batch_summary(
    conn_ids: list[str], done: dict[str, ServiceDone], failed: dict[str, BaseException], lines: dict[str, str]
) -> str:
    """The batch's summary: a headline, then one line per service in the batch's order."""
    headline = (
        f"ZenDRIVE fleet batch of {plural(len(conn_ids), 'service')}: {len(done)} written"
        + (f", {len(failed)} failed" if failed else "")
        + f", {plural(sum(d.rows for d in done.values()), 'row')}, {sum(d.revised for d in done.values())} revised"
    )
    return "\n".join([headline, *(lines[conn_id] for conn_id in conn_ids if conn_id in lines)])


def _fleet_error(
    conn_ids: list[str], done: dict[str, ServiceDone], failed: dict[str, BaseException]
) -> ZenDriveError:
    """The batch's failure, naming each failed service: final only if every one of them failed finally."""
    from airflow_provider_zendrive.exceptions import (
        ZenDriveError,
        ZenDriveFleetError,
        ZenDriveFleetRetryableError,
        ZenDriveTransientError,
    )

    failures = {conn_id: _error_text(error) for conn_id, error in failed.items()}
    final = all(
        isinstance(error, ZenDriveError) and not isinstance(error, ZenDriveTransientError)
        for error in failed.values()
    )
    listed = "; ".join(f"{conn_id}: {text}" for conn_id, text in failures.items())
    message = (
        f"ZenDRIVE fleet: {len(failed)} of {plural(len(conn_ids), 'service')} failed ({len(done)} written): "
        f"{listed}. "
    )
    if final:
        return ZenDriveFleetError(
            message
            + "Each failed on an error a retry cannot fix: fix the keys or wait for the service, then "
            "clear the task; it pulls only these.",
            failures=failures,
        )
    return ZenDriveFleetRetryableError(message + "A retry pulls only these.", failures=failures)
