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
    (airflow,) = [dep for dep in PYPROJECT["project"]["dependencies"] if dep.startswith("apache-airflow")]
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
