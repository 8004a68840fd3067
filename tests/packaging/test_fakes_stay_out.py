"""The fake hosts and ``make demo`` stay test code: ``app/`` never imports them, and the production image
(``Dockerfile``: the build stage copies, ``.dockerignore``: the build context, ``pyproject.toml``: the
packages the wheel holds) contains neither. ``APP_ENV=production`` refusing to talk to them is
``tests/security/test_production_refuses_fakes.py``."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

from tests.packaging.project_files import ROOT, parse, pyproject

TEST_ONLY = ("tests", "demo")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            # importlib.import_module("tests.fakes") would slip past the import statements.
            found |= {
                arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            }
    return found


def test_nothing_under_app_imports_the_fakes_or_the_demo() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "app").rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in TEST_ONLY
    }
    assert offenders == set()


def test_the_check_sees_an_import_of_the_fakes(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\nfrom tests.fakes.github import FakeGitHub\nimport demo.world\n"
        "importlib.import_module('tests.fakes')\n"
    )
    assert imported_modules(sample) >= {"tests.fakes.github", "demo.world", "tests.fakes"}


def test_the_image_is_built_from_app_only() -> None:
    dockerfile = parse()
    sources = [
        source
        for stage in dockerfile.stages
        for copy in stage.all("COPY")
        if not copy.startswith("--from=")
        for source in shlex.split(copy)[:-1]
    ]
    assert sources, "the build stage copies nothing?"
    assert not [s for s in sources if s.rstrip("/").split("/")[0] in (*TEST_ONLY, ".")], sources
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert set(TEST_ONLY) <= ignored, "the build context must not carry the fakes or the demo"


def test_the_wheel_holds_the_app_package_only() -> None:
    assert pyproject()["tool"]["setuptools"]["packages"]["find"]["include"] == ["app*"]
