"""Provider metadata: schema-valid, discoverable through the entry point, and listed by Airflow's CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_zendrive import __version__
from airflow_provider_zendrive._client.settings import DEFAULT_ENDPOINT
from airflow_provider_zendrive.get_provider_info import get_provider_info


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_points_at_get_provider_info() -> None:
    (entry,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_zendrive")
    ]
    assert entry.load() is get_provider_info
    assert get_provider_info()["versions"] == [__version__]


def test_connection_form_is_declared_without_importing_the_hook() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "zendrive"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["hidden-fields"] == ["schema"]
    assert behaviour["relabeling"] == {
        "login": "Access key",
        "password": "Secret key",
        "host": "Endpoint URL (optional)",
    }
    assert behaviour["placeholders"]["host"] == DEFAULT_ENDPOINT
    assert set(conn_type["conn-fields"]) == {"timeout", "verify", "max_retries"}
    verify = conn_type["conn-fields"]["verify"]
    assert "examples" not in verify["schema"]  # else the form's placeholder is "Start typing to see options"
    assert "CA bundle path" in verify["label"]


def test_the_zendrive_config_section_declares_the_defaults_the_code_falls_back_to() -> None:
    from airflow.configuration import conf

    from airflow_provider_zendrive._config import DEFAULTS, SECTION

    (section,) = get_provider_info()["config"]
    options = get_provider_info()["config"][section]["options"]
    assert section == SECTION
    assert {name: option["default"] for name, option in options.items()} == DEFAULTS
    assert all(option["type"] == "string" and option["description"] for option in options.values())
    # Airflow knows the section's defaults from the provider info (no fallback given here).
    assert conf.get(SECTION, "table") == DEFAULTS["table"]


def test_the_usage_page_plugin_is_registered_by_the_airflow_plugins_entry_point_only() -> None:
    from airflow_provider_zendrive.plugins.zendrive import ZenDriveUsagePlugin

    (entry,) = [
        ep for ep in entry_points(group="airflow.plugins") if ep.value.startswith("airflow_provider_zendrive")
    ]
    assert entry.load() is ZenDriveUsagePlugin
    # Not also in the provider info: Airflow would then load it twice (with lazy_discover_providers = False).
    assert "plugins" not in get_provider_info()


def test_every_declared_module_and_class_imports() -> None:
    import importlib

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    module, _, name = info["connection-types"][0]["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name).conn_type == "zendrive"
    from airflow.sdk import BaseNotifier

    for path in info["notifications"]:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseNotifier)


def test_airflow_cli_lists_the_connection_type(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    # Airflow may print log lines first; the JSON document is the line that starts with "[{".
    (document,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    hooks = json.loads(document)
    (ours,) = [h for h in hooks if h.get("connection_type") == "zendrive"]
    assert ours["class"] == "airflow_provider_zendrive.hooks.zendrive.ZenDriveStatsHook"
    assert ours["package_name"] == "airflow-provider-zendrive"
    assert ours["hook_name"] == "ZenDRIVE"


def test_airflow_3_1_gets_the_same_form_behaviour_from_the_hook() -> None:
    from airflow_provider_zendrive.hooks.zendrive import ZenDriveStatsHook

    (conn_type,) = get_provider_info()["connection-types"]
    declared = conn_type["ui-field-behaviour"]
    assert ZenDriveStatsHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }
