"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_zendrive import __version__

# A literal, not an import of _client.settings.DEFAULT_ENDPOINT (tests/test_provider_info.py checks they agree):
# Airflow calls this while its own exceptions module is still loading.
_DOCUMENTED_ENDPOINT = "https://dashboard.clearstreamer.com/zendrive-api/cdn-stats/"


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated against Airflow's ``provider_info.schema.json``)."""
    integration = "ZenDRIVE"
    return {
        "package-name": "airflow-provider-zendrive",
        "name": "ZenDRIVE",
        # Plain text: Airflow's Providers page strips RST markup characters, not whole links.
        "description": "Pull ZenDRIVE S3 Access usage statistics (requests, errors, egress bytes per day) "
        "into Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://wiki.clearstreamer.com/connecting/usage-stats-api/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": integration, "python-modules": ["airflow_provider_zendrive.hooks.zendrive"]}
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_zendrive.operators.zendrive"],
            }
        ],
        "sensors": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_zendrive.sensors.zendrive"],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": ["airflow_provider_zendrive.triggers.zendrive"],
            }
        ],
        # Read by the usage page and by ZenDriveBudgetAlertOperator (airflow_provider_zendrive._config, whose
        # DEFAULTS tests/test_provider_info.py compares with these).
        "config": {
            "zendrive": {
                "description": "Where the ZenDRIVE usage page reads the warehouse table, and the monthly "
                "egress budget that the page shows and ZenDriveBudgetAlertOperator alerts on.",
                "options": {
                    "sql_conn_id": {
                        "description": "The SQL connection (any common-sql database) of the table the stats "
                        "operator writes.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "my_warehouse",
                        "default": "zendrive_warehouse",
                    },
                    "table": {
                        "description": "The usage table, [schema.]name.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "billing.zendrive_daily_usage",
                        "default": "zendrive_daily_usage",
                    },
                    "revisions_table": {
                        "description": "The audit trail of revised counters (the operator's revisions_table); "
                        "empty: the page shows no revisions.",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": "billing.zendrive_usage_revisions",
                        "default": "zendrive_usage_revisions",
                    },
                    "budget_gb": {
                        "description": "The monthly egress budget in decimal GB: one number for every service, "
                        'or a JSON object {"<service_id>": GB}. Empty: no budget (the page shows none, and '
                        "the budget alert operator then needs its budget_gb argument).",
                        "version_added": "0.3.0",
                        "type": "string",
                        "example": '{"4242": 50000, "4343": 1200}',
                        "default": "",
                    },
                },
            }
        },
        "notifications": ["airflow_provider_zendrive.notifications.zendrive.ZenDriveEmailNotifier"],
        "extra-links": ["airflow_provider_zendrive.operators.zendrive.ZenDriveDashboardLink"],
        "connection-types": [
            {
                "connection-type": "zendrive",
                "hook-class-name": "airflow_provider_zendrive.hooks.zendrive.ZenDriveStatsHook",
                "hook-name": "ZenDRIVE",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {
                        "login": "Access key",
                        "password": "Secret key",
                        "host": "Endpoint URL (optional)",
                    },
                    # Extras take no placeholder here (Airflow's form has none for them): their hints are the
                    # conn-fields' labels and descriptions.
                    "placeholders": {
                        "login": "S3 access key (from the welcome email)",
                        "password": "S3 secret key",
                        "host": _DOCUMENTED_ENDPOINT,
                        "port": "443",
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "Connect and read timeout of each request. Default 30.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    # No "examples": with them Airflow's form shows "Start typing to see options" as the field's
                    # placeholder (the only placeholder it gives an extra), which says nothing about a path.
                    "verify": {
                        "label": "Verify TLS (true, false or a CA bundle path)",
                        "description": "true, false, or the path of a CA bundle (PEM) readable on every "
                        "worker and the API server. Empty: true.",
                        "schema": {"type": ["string", "boolean", "null"]},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries on 429, 5xx, timeouts and connection errors. Default 6.",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                },
            }
        ],
    }
