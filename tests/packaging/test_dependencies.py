"""pyproject.toml declares exactly what app/ imports: every third-party module app/ imports (or runs with
``python -m``) comes from a declared distribution, and every declared runtime distribution is used.

A module that only arrives as some other package's dependency would vanish, or change under us, the day that
package drops or bumps it; the lock pins versions, this pins intent.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections import defaultdict
from pathlib import Path

from tests.packaging.project_files import ROOT, pyproject, requirement_name

APP = ROOT / "app"
# Modules app/ runs as a child process (`python -m secantus` in app/storage/mongo.py).
RUN_AS_MODULE = re.compile(r"""["']-m["'],\s*["']([A-Za-z_][\w.]*)["']""")


def third_party_modules() -> dict[str, set[Path]]:
    """Top-level module names app/ imports or runs, with the files that do, standard library excluded."""
    found: dict[str, set[Path]] = defaultdict(set)
    for path in APP.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source, str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found[name.split(".")[0]].add(path.relative_to(ROOT))
        for name in RUN_AS_MODULE.findall(source):
            found[name.split(".")[0]].add(path.relative_to(ROOT))
    local = {"app", "__future__"} | set(sys.stdlib_module_names)
    return {name: files for name, files in found.items() if name not in local}


def distributions_of(module: str) -> set[str]:
    return {requirement_name(name) for name in importlib.metadata.packages_distributions().get(module, [])}


def declared(group: list[str]) -> set[str]:
    return {requirement_name(requirement) for requirement in group}


def test_every_module_app_imports_comes_from_a_declared_runtime_dependency() -> None:
    project = pyproject()["project"]
    runtime = declared(project["dependencies"])
    embedded = declared(project["optional-dependencies"]["embedded"])
    otel = declared(project["optional-dependencies"]["otel"])
    modules = third_party_modules()
    # The scan sees imports inside functions too, and modules that come with another distribution.
    assert {"strawberry", "httpcore", "idna", "graphql", "bson"} <= modules.keys()
    undeclared = {}
    for module, files in sorted(modules.items()):
        distributions = distributions_of(module)
        assert distributions, f"{module} (imported by {sorted(map(str, files))}) is not installed"
        allowed = {"secantus": runtime | embedded, "opentelemetry": runtime | otel}.get(module, runtime)
        if not distributions & allowed:
            undeclared[module] = (sorted(distributions), sorted(map(str, files)))
    assert not undeclared, f"declare these in [project] dependencies: {undeclared}"


def test_the_embedded_database_is_an_extra_not_a_runtime_dependency() -> None:
    project = pyproject()["project"]
    assert distributions_of("secantus") == {"secantusdb"}
    assert "secantusdb" not in declared(project["dependencies"])
    assert declared(project["optional-dependencies"]["embedded"]) == {"secantusdb"}


def test_every_declared_runtime_dependency_is_used_by_app() -> None:
    used = {distribution for module in third_party_modules() for distribution in distributions_of(module)}
    unused = declared(pyproject()["project"]["dependencies"]) - used
    assert not unused, f"declared but never imported by app/: {sorted(unused)}"


def test_test_tools_stay_out_of_the_runtime_dependencies() -> None:
    config = pyproject()
    runtime = declared(config["project"]["dependencies"])
    for group, requirements in config["dependency-groups"].items():
        assert not declared(requirements) & runtime, group
    # Test tools are a dependency group (never published as an extra anyone could install).
    assert set(config["project"]["optional-dependencies"]) == {"embedded", "otel"}


def test_only_the_tracing_package_imports_the_tracing_extra() -> None:
    """app/ runs without the `otel` extra (the production image): app/tracing imports it, guarded."""
    importers = third_party_modules()["opentelemetry"]
    assert importers and all(path.parts[:2] == ("app", "tracing") for path in importers), importers
    assert "opentelemetry" not in declared(pyproject()["project"]["dependencies"])
