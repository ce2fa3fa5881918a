"""
OpenLineage events checked against the published specification: the JSON schemas vendored in
``tests/data/openlineage`` (source and version in its README).

Each event is validated against ``OpenLineage.json`` (its ``schemaURL``), and each facet that belongs to the
specification (``_schemaURL`` under ``https://openlineage.io/spec/``) against its own schema as well, resolved
offline from the vendored files; facets of other producers (Airflow's own) are checked only as the base facet
they extend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "data" / "openlineage"
SPEC_PREFIX = "https://openlineage.io/spec/"


@cache
def registry() -> Registry[Any]:
    """Every vendored schema, by its ``$id``."""
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry[Any]().with_resources(resources)


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(where, key, facet)`` for every facet of an event."""
    yield from (("run", key, facet) for key, facet in event.get("run", {}).get("facets", {}).items())
    yield from (("job", key, facet) for key, facet in event.get("job", {}).get("facets", {}).items())
    for kind, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for dataset in event.get(kind, []):
            where = f"{kind} {dataset['namespace']} {dataset['name']}"
            for group in ("facets", extra):
                yield from ((where, key, facet) for key, facet in dataset.get(group, {}).items())


def spec_errors(event: dict[str, Any]) -> list[str]:
    """Everything in ``event`` that the specification's schemas refuse (empty: valid)."""
    found = []

    def check(instance: Any, url: str, where: str) -> None:
        if url.split("#", maxsplit=1)[0] not in registry():
            found.append(f"{where}: {url} is not vendored in {SCHEMAS}")
            return
        validator = jsonschema.Draft202012Validator(
            {"$ref": url}, registry=registry(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        found.extend(
            f"{where}: {error.json_path}: {error.message}" for error in validator.iter_errors(instance)
        )

    check(event, event.get("schemaURL", ""), "event")
    for where, key, facet in _facets(event):
        url = facet.get("_schemaURL", "")
        if url.startswith(SPEC_PREFIX) and "/facets/" in url:
            check(facet, url, f"{where} facet {key!r}")
    return found


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events a file transport wrote, one JSON object a line."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
