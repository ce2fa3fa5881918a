"""What pyproject.toml promises agrees with what CI proves (the Makefile's Airflow releases and Python)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
MAKEFILE = (REPO / "Makefile").read_text()
#: The CPython minors CI proves (the Makefile's CI_PYTHONS): the suite on the first, the install check on all.
MAKEFILE_CI_PYTHONS: list[str] = re.findall(r"^CI_PYTHONS := (.+)$", MAKEFILE, flags=re.MULTILINE)[0].split()


def make_variable(name: str) -> str:
    values: list[str] = re.findall(rf"^{name} := (\S+)$", MAKEFILE, flags=re.MULTILINE)
    (value,) = values
    return value


def test_the_airflow_floor_is_the_minor_ci_proves() -> None:
    floor = make_variable("AIRFLOW_FLOOR")
    (airflow,) = [dep for dep in PYPROJECT["project"]["dependencies"] if dep.startswith("apache-airflow>")]
    assert airflow == f"apache-airflow>={'.'.join(floor.split('.')[:2])}"
    for version in (floor, make_variable("AIRFLOW_LATEST")):
        pins = (REPO / "constraints" / f"airflow-{version}.txt").read_text()
        assert f"apache-airflow=={version}\n" in pins


def test_runtime_dependencies_cover_every_feature_without_aiohttp() -> None:
    names = {re.split(r"[<>=\[; ]", dep)[0] for dep in PYPROJECT["project"]["dependencies"]}
    assert {"apache-airflow", "httpx"} <= names
    assert "aiohttp" not in names
    assert not any(
        "aiohttp" in dep for deps in PYPROJECT["project"]["optional-dependencies"].values() for dep in deps
    )


def test_python_classifiers_are_the_versions_ci_runs() -> None:
    """The classifiers are the Makefile's CI_PYTHONS, requires-python their floor, this interpreter one of them."""
    ci_pythons = MAKEFILE_CI_PYTHONS
    versions = [
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions == ci_pythons
    assert ci_pythons == sorted(ci_pythons, key=lambda v: tuple(map(int, v.split("."))))
    assert PYPROJECT["project"]["requires-python"] == f">={ci_pythons[0]}"
    assert (
        f"{sys.version_info.major}.{sys.version_info.minor}" in ci_pythons
    )  # the suite runs on a claimed one


def test_the_providers_page_links_the_read_the_docs_site() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert urls["Documentation"] == "https://airflow-provider-zendrive.readthedocs.io/en/latest/"
    assert urls["Changelog"] == urls["Documentation"] + "changelog.html"
    assert (REPO / "docs" / "changelog.rst").is_file()
    assert not any("," in url or "pypi.org" in url for url in urls.values())  # Airflow splits on commas


def test_read_the_docs_installs_what_make_install_does() -> None:
    import yaml

    config = yaml.safe_load((REPO / ".readthedocs.yaml").read_text())
    latest = make_variable("AIRFLOW_LATEST")
    (install,) = [c for c in config["build"]["jobs"]["install"] if "apache-airflow==" in c]
    assert f"constraints/airflow-{latest}.txt" in install
    assert f'"apache-airflow=={latest}"' in install
    assert ".[docs]" in install
    (build,) = config["build"]["jobs"]["build"]["html"]
    assert " -W " in build
    assert " --keep-going " in build
    assert config["sphinx"]["configuration"] == "docs/conf.py"


def test_the_wheel_holds_no_test_only_code_and_the_sdist_no_half_runnable_tests(tmp_path: Path) -> None:
    import subprocess
    import tarfile
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "uv", "build", "--quiet", "--out-dir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    wheel_files = zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        sdist_files = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]

    package = [name for name in wheel_files if name.startswith("airflow_provider_zendrive/")]
    assert "airflow_provider_zendrive/py.typed" in package
    assert not [name for name in package if "postgres" in name or "/tests/" in name or "conftest" in name]
    assert not [name for name in sdist_files if name.startswith(("tests/", "docs/_build/"))]
    assert {"pyproject.toml", "README.md", "airflow_provider_zendrive/__init__.py"} <= set(sdist_files)


def imported_distributions() -> dict[str, set[str]]:
    """What the package imports (module level and inside functions), by distribution: the files importing it."""
    import ast

    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "airflow_provider_zendrive").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] in sys.stdlib_module_names or parts[0] == "airflow_provider_zendrive":
                    continue
                if parts[:2] == ["airflow", "providers"]:
                    provider = parts[2:4] if parts[2] == "common" else parts[2:3]
                    distribution = "apache-airflow-providers-" + "-".join(provider)
                else:
                    distribution = {"airflow": "apache-airflow"}.get(parts[0], parts[0])
                found.setdefault(distribution, set()).add(str(path.relative_to(REPO)))
    return found


def test_the_declared_dependencies_are_the_imported_ones() -> None:
    def names(deps: list[str]) -> set[str]:
        return {re.split(r"[<>=\[; ]", dep)[0] for dep in deps}

    imported = imported_distributions()
    # Imported only where their own host loads us: pytest through the pytest11 entry point, the OpenLineage
    # provider (and its client) by calling get_openlineage_facets_on_*; common-sql is the `sql` extra (table
    # outputs) and pyarrow the `parquet` extra (Parquet files).
    loaded_by_their_host = {"pytest", "apache-airflow-providers-openlineage", "openlineage"}
    extras = {"sql": {"apache-airflow-providers-common-sql"}, "parquet": {"pyarrow"}}
    for extra, distributions in extras.items():
        assert names(PYPROJECT["project"]["optional-dependencies"][extra]) == distributions
    optional = set().union(*extras.values())
    assert set(imported) - loaded_by_their_host - optional == names(PYPROJECT["project"]["dependencies"])
    assert imported["pytest"] == {"airflow_provider_zendrive/testing/pytest_plugin.py"}
