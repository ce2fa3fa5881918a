"""The documentation builds without a warning, and every public class and parameter is documented."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import airflow_provider_zendrive

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Classes whose every ``__init__`` parameter must appear as ``:param name:`` in the class docstring.
DOCUMENTED_PARAMS = (
    "airflow_provider_zendrive.hooks.zendrive.ZenDriveStatsHook",
    "airflow_provider_zendrive.operators.zendrive.ZenDriveStatsOperator",
    "airflow_provider_zendrive.operators.zendrive.ZenDriveFleetStatsOperator",
    "airflow_provider_zendrive.sensors.zendrive.ZenDriveServiceActiveSensor",
    "airflow_provider_zendrive.triggers.zendrive.ZenDriveServiceActiveTrigger",
    "airflow_provider_zendrive.testing.emulator.ZenDriveEmulator",
    "airflow_provider_zendrive.testing.Fault",
    "airflow_provider_zendrive.testing.Account",
    "airflow_provider_zendrive.testing.RecordedRequest",
    "airflow_provider_zendrive._client.settings.ZenDriveSettings",
    "airflow_provider_zendrive._client.api.StatsCall",
    "airflow_provider_zendrive._client.retry.Backoff",
)


def public_module_names() -> list[str]:
    """
    Every module of the package whose dotted name has no ``_``-prefixed part (so ``__main__`` is left out).

    Empty ``__init__.py`` files (``hooks/``, ``operators/``, ...) only hold modules and are left out too.
    """
    names = [airflow_provider_zendrive.__name__]
    prefix = f"{airflow_provider_zendrive.__name__}."
    for info in pkgutil.walk_packages(airflow_provider_zendrive.__path__, prefix):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.ispkg:
            init = ROOT.joinpath(*info.name.split("."), "__init__.py")
            if not init.read_text(encoding="utf-8").strip():
                continue
        names.append(info.name)
    return sorted(names)


def public_objects(module: ModuleType) -> dict[str, object]:
    """The module's ``__all__``, or else its public names defined in the module itself."""
    if hasattr(module, "__all__"):
        return {name: getattr(module, name) for name in module.__all__}
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }


def own_doc(obj: object) -> str:
    """The object's own docstring (not one inherited from a base class)."""
    if inspect.isclass(obj):
        return obj.__dict__.get("__doc__") or ""
    return getattr(obj, "__doc__", None) or ""


def resolve(path: str) -> object:
    module_name, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    if not os.environ.get("CI"):  # in CI (make test installs the docs extra) a missing Sphinx is a failure
        pytest.importorskip("sphinx")
    env = {**os.environ, "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME", str(tmp_path / "airflow_home"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-E",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr}{result.stdout}"
    assert (tmp_path / "html" / "api" / "hooks.html").is_file()


@pytest.mark.parametrize("module_name", public_module_names())
def test_public_classes_and_functions_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"module {module_name} has no docstring"
    missing = []
    for name, obj in public_objects(module).items():
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not own_doc(obj).strip():
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith(airflow_provider_zendrive.__name__):
            for attr, member in vars(obj).items():
                function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
                if isinstance(function, property):
                    function = function.fget
                if attr.startswith("_") or not inspect.isfunction(function):
                    continue
                if not (function.__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, f"{module_name}: no docstring on {', '.join(missing)}"


@pytest.mark.parametrize("path", DOCUMENTED_PARAMS)
def test_every_init_parameter_is_documented(path: str) -> None:
    cls = resolve(path)
    assert inspect.isclass(cls)
    # A dataclass itself (BaseOperator is one; its subclasses are not). is_dataclass, true then, narrows the type.
    if "__dataclass_fields__" in cls.__dict__ and dataclasses.is_dataclass(cls):
        params = [field.name for field in dataclasses.fields(cls) if field.init]
    else:
        # BaseOperator's metaclass wraps __init__ and gives it a signature merged with BaseOperator's: read
        # the parameters of the function as written instead (*args / **kwargs are not counted).
        code = inspect.unwrap(cls.__dict__["__init__"]).__code__
        params = list(code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount])
    documented = set(re.findall(r":param\s+(?:[^:]*\s)?(\w+):", own_doc(cls)))
    missing = [name for name in params if name not in documented]
    assert not missing, f"{path}: parameters without ':param name:' in the class docstring: {missing}"


def test_every_public_module_is_in_the_api_reference() -> None:
    documented = set()
    for page in DOCS.rglob("*.rst"):
        documented.update(re.findall(r"^\.\. automodule:: ([\w.]+)", page.read_text(encoding="utf-8"), re.M))
    missing = sorted(set(public_module_names()) - documented)
    assert not missing, f"modules without an '.. automodule::' in docs/: {missing}"


def test_every_example_dag_marker_pair_is_closed() -> None:
    """The docs include each ``[START name]`` .. ``[END name]`` snippet; an unclosed one breaks the build."""
    for path in sorted((ROOT / "example_dags").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        starts = re.findall(r"#\s*\[START\s+([\w.-]+)\]", text)
        ends = re.findall(r"#\s*\[END\s+([\w.-]+)\]", text)
        assert sorted(starts) == sorted(ends), f"{path.name}: START / END markers do not pair up"
        assert len(set(starts)) == len(starts), f"{path.name}: a marker name is used twice"
