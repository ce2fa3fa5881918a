"""The public names, pinned (after httpx's tests/test_exported_members.py): a change here is an API change."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "airflow_provider_zendrive.hooks.zendrive": [
        "DailyUsage",
        "DateWindow",
        "UsageStats",
        "UsageSummary",
        "ZenDriveStatsHook",
    ],
    "airflow_provider_zendrive.operators.zendrive": [
        "DASHBOARD_URL",
        "RunPlan",
        "ZenDriveBudgetAlertOperator",
        "ZenDriveDashboardLink",
        "ZenDriveFleetStatsOperator",
        "ZenDriveStatsOperator",
        "file_asset",
        "table_asset",
        "table_asset_uri",
    ],
    "airflow_provider_zendrive.notifications.zendrive": ["ZenDriveEmailNotifier"],
    "airflow_provider_zendrive.plugins.zendrive": ["URL_PREFIX", "ZenDriveUsagePlugin"],
    "airflow_provider_zendrive.reports": [
        "Reconciliation",
        "ReportEmail",
        "ReportMonth",
        "format_volume",
        "monthly_report_email",
        "monthly_report_html",
        "read_warehouse_month",
        "reconcile_month",
        "usage_summary",
        "write_report",
    ],
    "airflow_provider_zendrive.sensors.zendrive": ["ZenDriveServiceActiveSensor"],
    "airflow_provider_zendrive.triggers.zendrive": ["ZenDriveServiceActiveTrigger"],
    "airflow_provider_zendrive.exceptions": [
        "ZenDriveAuthError",
        "ZenDriveError",
        "ZenDriveFleetError",
        "ZenDriveFleetRetryableError",
        "ZenDriveInputError",
        "ZenDriveRateLimitError",
        "ZenDriveRequestError",
        "ZenDriveResponseError",
        "ZenDriveServiceInactiveError",
        "ZenDriveTLSError",
        "ZenDriveTransientError",
        "ZenDriveUnavailableError",
    ],
    "airflow_provider_zendrive.testing": [
        "DEMO_ACCESS_KEY",
        "DEMO_SECRET_KEY",
        "DEMO_SERVICE_ID",
        "ENDPOINT_PATH",
        "Account",
        "Fault",
        "RecordedRequest",
        "ZenDriveEmulator",
        "usage_for_day",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        member = getattr(module, name)
        if callable(member):
            assert member.__doc__, f"{module_name}.{name} has no docstring"


def test_retry_policy_is_public_where_airflow_has_retry_policies() -> None:
    module = pytest.importorskip("airflow_provider_zendrive.retry_policy")
    assert sorted(module.__all__) == ["DEFAULT_RETRY_AFTER_CAP", "ZenDriveRetryPolicy", "retry_after_cap"]


def test_the_package_root_holds_only_public_modules_and_marked_internals() -> None:
    import pkgutil

    import airflow_provider_zendrive

    names = {info.name for info in pkgutil.iter_modules(airflow_provider_zendrive.__path__)}
    public = {
        "exceptions",
        "get_provider_info",
        "hooks",
        "notifications",
        "operators",
        "plugins",
        "reports",
        "retry_policy",
        "sensors",
        "testing",
        "triggers",
    }
    assert {name for name in names if not name.startswith("_")} == public
    assert {name for name in names if name.startswith("_")} == {
        "_client",
        "_compat",
        "_config",
        "_outputs",
        "_text",
        "_usage",
    }


def test_one_default_connection_id() -> None:
    from airflow_provider_zendrive._client import DEFAULT_CONN_ID
    from airflow_provider_zendrive._client.settings import ZenDriveSettings
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

    assert ZenDriveStatsHook.default_conn_name == DEFAULT_CONN_ID == "zendrive_default"
    assert ZenDriveSettings("https://x/", "a", "b").conn_id == DEFAULT_CONN_ID
