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
