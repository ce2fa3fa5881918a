"""Sphinx configuration of the airflow-provider-zendrive documentation (``make docs``)."""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# autodoc imports the package, which imports Airflow, which creates its home on first import: keep that out
# of ~/airflow. An AIRFLOW_HOME set by the caller (e.g. the test suite) is left alone.
os.environ.setdefault("AIRFLOW_HOME", str(DOCS / "_build" / "airflow_home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# The package is installed editable in the venv; this makes a plain checkout work too.
sys.path.insert(0, str(ROOT))

from airflow_provider_zendrive import __version__  # noqa: E402

project = "airflow-provider-zendrive"
author = "airflow-provider-zendrive maintainers"
copyright = "the airflow-provider-zendrive maintainers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
# No intersphinx: the build must work offline. References to Python, Airflow or requests objects render as
# plain text instead of links (see nitpick_ignore_regex below).

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build"]
templates_path: list[str] = []
language = "en"

# Every reference to the provider's own objects must resolve. References to other projects cannot without
# intersphinx, so those (and only those) are ignored: they render as plain text.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(airflow|httpx|requests|pendulum|pytest|datetime|collections|os|typing|ssl|email|fastapi)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Context|Connection|DbApiHook|AirflowException|AirflowFailException|AirflowSkipException|"
        r"RetryDecision|RetryPolicy|Asset|ObjectStoragePath|TaskInstanceKey|BaseOperator|timedelta|"
        r"OperatorLineage|VolumeUnit)",
    ),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}

html_theme = "alabaster"
html_title = f"airflow-provider-zendrive {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Apache Airflow provider for the ZenDRIVE usage-statistics API",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False

# The benchmark report is Markdown written by ``make bench`` (benchmarks/run.py). Sphinx reads only .rst here,
# so the page benchmarks.rst shows the file verbatim when it exists and says how to produce it when it does
# not; the raw file is also copied next to the HTML. (``make docs`` builds with -E, so a new or changed report
# always shows.)
BENCHMARKS = DOCS / "benchmarks.md"
html_extra_path = [BENCHMARKS.name] if BENCHMARKS.is_file() else []

# The example DAGs are included, never copied: example_dags.rst gets one section per example_dags/*.py, with
# the module docstring (Markdown, as Airflow renders it as doc_md) as its text and one literalinclude per ``# [START name]`` / ``# [END name]`` pair (the
# whole file when it has no markers).
EXAMPLE_DAGS = ROOT / "example_dags"
_MARKER = re.compile(r"#\s*\[START\s+([\w.-]+)\]")


def _example_names() -> set[str]:
    """Top-level names of the example DAG files, which their docstrings may mention with roles."""
    names: set[str] = set()
    for path in example_dag_files():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
    return names


def _benchmarks_rst() -> str:
    if BENCHMARKS.is_file():
        return (
            "The report below is ``docs/benchmarks.md``, as written by ``make bench`` "
            "(`raw Markdown <benchmarks.md>`__).\n\n"
            ".. literalinclude:: benchmarks.md\n   :language: text\n"
        )
    return "No report yet: run ``make bench`` to write ``docs/benchmarks.md``, then ``make docs``.\n"


def example_dag_files() -> list[Path]:
    """The example DAG files the docs include (also used by tests/test_docs.py)."""
    return sorted(p for p in EXAMPLE_DAGS.glob("*.py") if not p.name.startswith("_"))


def _markdown(text: str) -> str:
    """A docstring in Markdown (what Airflow renders as ``doc_md``), as the raw HTML CommonMark makes of it."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(text.strip())
    return ".. raw:: html\n\n" + "".join(f"   {line}\n" if line else "\n" for line in rendered.splitlines())


def _example_dags_rst() -> str:
    files = example_dag_files()
    if not files:
        return "\nThe example DAGs are not written yet.\n"
    parts = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        first, _, body = doc.partition("\n")
        # "Daily billing: pull ... into a table." -> title "Daily billing", lead sentence "Pull ... table."
        title, colon, lead = first.strip().partition(": ")
        if colon and lead:
            body = f"{lead[0].upper()}{lead[1:]}\n{body}"
        title = title.rstrip(".") or path.stem
        rel = f"../example_dags/{path.name}"
        parts.append(f"\n.. _example-{path.stem}:\n\n{title}\n{'-' * len(title)}\n\n")
        parts.append(f"``example_dags/{path.name}``\n\n{_markdown(body)}\n\n")
        markers = list(dict.fromkeys(_MARKER.findall(text)))
        for name in markers or [None]:
            parts.append(f".. literalinclude:: {rel}\n   :language: python\n")
            if name is not None:
                parts.append(f"   :start-after: [START {name}]\n   :end-before: [END {name}]\n   :dedent:\n")
            parts.append("\n")
    return "".join(parts)


# The example modules are shown, not imported (that would run the DAG definitions), so their own names cannot
# resolve as references: they render as plain text.
nitpick_ignore_regex += [(r"py:.*", re.escape(name)) for name in sorted(_example_names())]


def _generated_sections(app: object, docname: str, source: list[str]) -> None:
    if docname == "benchmarks":
        source[0] += "\n" + _benchmarks_rst()
    elif docname == "example_dags":
        source[0] += "\n" + _example_dags_rst()


def setup(app: object) -> dict[str, object]:
    app.connect("source-read", _generated_sections)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True}
