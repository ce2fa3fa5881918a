"""
The provider's ``[zendrive]`` section of Airflow's configuration: where the warehouse table lives and the
monthly budget. Declared (with these defaults) in the provider info's ``config``; read when a task runs or a
page is served, never while a DAG is parsed. The usage page and
:class:`~airflow_provider_zendrive.operators.zendrive.ZenDriveBudgetAlertOperator` read the budget through :func:`configured_budget_gb`, so
the two never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from airflow_provider_zendrive.exceptions import ZenDriveInputError

__all__ = ["DEFAULTS", "SECTION", "Budget", "UsageSettings", "configured_budget_gb", "usage_settings"]

SECTION = "zendrive"
#: Each option's default: the example DAGs' names (``budget_gb`` empty: no budget).
DEFAULTS = {
    "sql_conn_id": "zendrive_warehouse",
    "table": "zendrive_daily_usage",
    "revisions_table": "zendrive_usage_revisions",
    "budget_gb": "",
}
#: One budget in GB for every service, or ``{service_id: GB}``.
Budget = float | dict[int | str, float]


@dataclass(frozen=True)
class UsageSettings:
    """
    The ``[zendrive]`` section, read once.

    :param sql_conn_id: the SQL connection of the warehouse.
    :param table: the usage table the stats operator writes.
    :param revisions_table: its audit trail; None when the option is empty.
    :param budget_gb: the monthly egress budget (see :func:`configured_budget_gb`); None: none configured.
    """

    sql_conn_id: str
    table: str
    revisions_table: str | None
    budget_gb: Budget | None


def _option(name: str) -> str:
    from airflow.providers.common.compat.sdk import conf

    return str(conf.get(SECTION, name, fallback=DEFAULTS[name])).strip()


def configured_budget_gb() -> Budget | None:
    """
    ``[zendrive] budget_gb``: a number of decimal GB for every service, or a JSON object ``{"<service_id>": GB}``
    (services not in it have no budget); empty: None.

    :raises ZenDriveInputError: for anything else, naming the option.
    """
    from airflow_provider_zendrive._outputs.budget import budgets_in_bytes

    text = _option("budget_gb")
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict):
        budget: Budget = {str(key): value for key, value in value.items()}
    elif isinstance(value, int | float) and not isinstance(value, bool):
        budget = float(value)
    else:
        budget = value  # refused just below
    try:
        budgets_in_bytes(budget)
        if isinstance(budget, dict):
            budget = {int(key): gb for key, gb in budget.items()}
    except (ZenDriveInputError, ValueError) as exc:
        raise ZenDriveInputError(
            f"[{SECTION}] budget_gb = {text!r} is not a budget: use a number of GB (e.g. 50000) or a JSON object "
            f'{{"<service_id>": GB}} ({exc}).'
        ) from None
    return budget


def usage_settings() -> UsageSettings:
    """
    Read the ``[zendrive]`` section (``AIRFLOW__ZENDRIVE__<OPTION>`` in the environment wins, as always).

    :raises ZenDriveInputError: for a budget that is not one, an empty connection id, or a table name that is not
        ``[schema.]name`` (the rules of the stats operator's ``table``).
    """
    from airflow_provider_zendrive._outputs.tables import quote_table

    sql_conn_id, table, revisions_table = _option("sql_conn_id"), _option("table"), _option("revisions_table")
    if not sql_conn_id:
        raise ZenDriveInputError(f"[{SECTION}] sql_conn_id must not be empty.")
    for name, value in (("table", table), ("revisions_table", revisions_table)):
        if value or name == "table":
            try:
                quote_table(value)
            except ZenDriveInputError as exc:
                raise ZenDriveInputError(f"[{SECTION}] {name}: {exc}") from None
    return UsageSettings(
        sql_conn_id=sql_conn_id,
        table=table,
        revisions_table=revisions_table or None,
        budget_gb=configured_budget_gb(),
    )
