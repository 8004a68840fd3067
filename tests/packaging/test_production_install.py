"""The image's install, replayed without Docker: the build stage's COPY and `uv sync` steps, in their order,
with its uv settings, into a temporary virtualenv (offline, from the cache `make install` filled). Then that
environment is checked as the image would run it: the service works, and nothing of development is there.

The interpreter is this machine's rather than the image's Python 3.12, which is the one thing not replayed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.project_files import ROOT, parse

UV = ROOT / ".tools" / "uv" / "bin" / "uv"
IMAGE_UV = "/opt/uv/bin/uv"
# Distributions (by their import names) that only development installs may contain.
DEVELOPMENT_ONLY = [
    "secantus",
    "pytest",
    "respx",
    "gql",
    "mypy",
    "ruff",
    "hypothesis",
    "playwright",
    "yaml",
    "github",
]


def build_stage_environment(venv: Path) -> dict[str, str]:
    """The process environment with the build stage's ENV, pointed at `venv` and kept offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("UV_", "VIRTUAL_ENV"))}
    for arguments in parse().stage("build").all("ENV"):
        for item in shlex.split(arguments):
            key, _, value = item.partition("=")
            env[key] = value
    env.pop("UV_NO_CACHE")  # the image has no cache to reuse; here the cache is what keeps this offline
    env.update(UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON=sys.executable, UV_OFFLINE="1")
    return env


def replay_build_stage(context: Path, venv: Path) -> list[list[str]]:
    """Copies what each COPY copies and runs each `uv` RUN, in order; returns the uv commands run."""
    env = build_stage_environment(venv)
    commands = []
    for instruction in parse().stage("build").instructions:
        if instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.arguments)
            assert not any(source.startswith("--") for source in sources), instruction
            for source in sources:
                target = (
                    context / destination / Path(source).name
                    if destination.endswith("/") or len(sources) > 1
                    else context / destination
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / source, target)
        elif instruction.keyword == "RUN" and instruction.arguments.startswith(IMAGE_UV):
            arguments = shlex.split(instruction.arguments)[1:]
            result = subprocess.run(
                [str(UV), *arguments],
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert result.returncode == 0, f"uv {shlex.join(arguments)} failed:\n{result.stderr}"
            commands.append(arguments)
    return commands


@pytest.fixture(scope="module")
def production_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert UV.exists(), f"{UV} is missing: run the tests through `make test` (it installs the pinned uv)"
    base = tmp_path_factory.mktemp("image")
    venv = base / "venv"
    commands = replay_build_stage(base / "src", venv)
    assert [command[0] for command in commands] == ["sync", "sync"]
    yield venv
    shutil.rmtree(base, ignore_errors=True)


def run(venv: Path, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=venv,  # not the repository: nothing may be imported from the working tree
    )


def test_the_console_script_serves_the_same_schema_as_the_repository(production_venv: Path) -> None:
    result = run(production_venv, "git-integrations", "export-schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text()


def test_the_project_is_installed_with_its_assets_and_license_not_linked_to_the_sources(
    production_venv: Path,
) -> None:
    probe = (
        "import app, importlib.metadata as m, json, pathlib;"
        "root = pathlib.Path(app.__file__).parent;"
        "print(json.dumps({"
        "'location': str(root),"
        "'assets': sorted(p.name for p in (root / 'static' / 'graphiql').iterdir()),"
        "'license': m.metadata('git-integrations')['License-Expression'],"
        "'license_files': [str(f) for f in m.files('git-integrations') if '.dist-info/licenses/' in str(f)],"
        "}))"
    )
    result = run(production_venv, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["location"]).is_relative_to(production_venv)
    assert "README.md" in found["assets"] and len(found["assets"]) > 1  # GraphiQL's vendored files
    assert found["license"] == "Apache-2.0"
    assert [Path(name).name for name in found["license_files"]] == ["LICENSE"]


def test_no_test_tool_and_no_embedded_database_is_installed(production_venv: Path) -> None:
    probe = f"import importlib.util; print([m for m in {DEVELOPMENT_ONLY!r} if importlib.util.find_spec(m)])"
    result = run(production_venv, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for tool in ("uv", "pip", "pytest", "ruff"):
        assert not (production_venv / "bin" / tool).exists(), tool


def test_without_mongodb_uri_the_service_says_the_embedded_database_is_not_installed(
    production_venv: Path, tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"], "APP_ENV": "development", "DATA_DIR": str(tmp_path), "PORT": "1"}
    result = run(production_venv, "git-integrations", "serve", env=env)
    assert result.returncode != 0
    assert "MONGODB_URI is not set and the embedded database is not installed" in result.stderr
    assert "git-integrations[embedded]" in result.stderr
