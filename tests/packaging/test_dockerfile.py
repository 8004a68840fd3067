"""What the Dockerfile promises, read statically (no Docker engine runs here): a base pinned by digest,
every install checked against hashes, runtime packages only, OCI labels that agree with pyproject.toml,
an unprivileged user, and a build context without the development files.

tests/packaging/test_production_install.py replays the build stage's installs for real.
"""

from __future__ import annotations

import re
import shlex

import pytest

from tests.packaging.project_files import (
    DIGEST,
    ROOT,
    Dockerfile,
    hashed_requirements,
    parse,
    pyproject,
)

UV = "/opt/uv/bin/uv"
# Installs that no lock or hash governs.
UNCHECKED_INSTALL = re.compile(r"apt-get install|uv pip install|uv add|pip install (?!--require-hashes)")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse()


def labels(dockerfile: Dockerfile) -> dict[str, str]:
    found: dict[str, str] = {}
    for arguments in dockerfile.runtime.all("LABEL"):
        for item in shlex.split(arguments):
            key, _, value = item.partition("=")
            found[key] = value
    return found


def test_every_stage_starts_from_a_base_image_pinned_by_digest(dockerfile: Dockerfile) -> None:
    assert dockerfile.stages, "no FROM"
    for stage in dockerfile.stages:
        assert DIGEST.search(stage.image), f"{stage.image} is not pinned by @sha256:<digest>"
    # Build and runtime share one base, so the venv's interpreter links resolve in the runtime stage.
    assert len({stage.image for stage in dockerfile.stages}) == 1


def test_the_labels_name_the_base_image_the_version_and_the_license(dockerfile: Dockerfile) -> None:
    project = pyproject()["project"]
    found = {key: value for key, value in labels(dockerfile).items() if key.startswith("org.opencontainers")}
    assert found["org.opencontainers.image.title"] == project["name"]
    assert found["org.opencontainers.image.description"] == project["description"]
    assert found["org.opencontainers.image.version"] == project["version"]
    assert found["org.opencontainers.image.licenses"] == project["license"]
    assert {"org.opencontainers.image.revision", "org.opencontainers.image.created"} <= found.keys()
    tag, _, digest = dockerfile.runtime.image.partition("@")
    base_name = found["org.opencontainers.image.base.name"].replace(
        "${PYTHON_TAG}", dockerfile.global_args["PYTHON_TAG"]
    )
    base_digest = found["org.opencontainers.image.base.digest"].replace(
        "${PYTHON_DIGEST}", dockerfile.global_args["PYTHON_DIGEST"]
    )
    assert (base_name, base_digest) == (tag, digest)


def test_uv_is_installed_from_the_hash_pinned_file_the_project_requires(dockerfile: Dockerfile) -> None:
    runs = " ".join(dockerfile.stage("build").all("RUN"))
    assert "pip install --require-hashes --no-deps -r tools/uv.txt" in runs
    (uv,) = hashed_requirements(ROOT / "tools" / "uv.txt")
    assert uv.name == "uv" and uv.hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in uv.hashes)
    assert pyproject()["tool"]["uv"]["required-version"] == f"=={uv.version}"


def test_every_pip_install_checks_hashes(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            for command in re.split(r"&&|;", run):
                if re.search(r"\bpip install\b", command):
                    assert "--require-hashes" in command, command


def test_the_image_installs_the_locked_runtime_packages_only(dockerfile: Dockerfile) -> None:
    syncs = [run for run in dockerfile.stage("build").all("RUN") if run.startswith(f"{UV} sync")]
    assert syncs, "the build stage installs nothing from uv.lock"
    for sync in syncs:
        options = shlex.split(sync)[2:]
        assert "--locked" in options, sync  # refuses a lock that disagrees with pyproject.toml
        assert "--no-default-groups" in options, sync  # no dependency group: no test tools
        forbidden = {"--extra", "--all-extras", "--group", "--all-groups", "--dev", "--only-dev", "--inexact"}
        assert not forbidden & {option.partition("=")[0] for option in options}, sync  # no `embedded`
        # The project is built in isolation by the hash-pinned setuptools, not by whatever is installed.
        assert "--no-build-isolation" not in options, sync
    assert "--no-editable" in shlex.split(syncs[-1]), "the project must be installed, not linked to /src"
    # Nothing else installs packages: no apt, no uv pip, no pip outside the uv bootstrap.
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            assert not UNCHECKED_INSTALL.search(run), run


def test_the_runtime_stage_gets_only_the_virtualenv_and_runs_unprivileged(dockerfile: Dockerfile) -> None:
    runtime = dockerfile.runtime
    assert runtime.all("COPY") == ["--from=build /opt/venv /opt/venv"]
    assert not runtime.all("ADD")
    users = runtime.all("USER")
    assert users, "the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert f"--uid {user}" in " ".join(runtime.all("RUN")), "USER names no user the image creates"
    (cmd,) = runtime.all("CMD")
    script = shlex.split(cmd.strip("[]").replace(",", " "))[0]
    assert script in pyproject()["project"]["scripts"], f"CMD runs {script}, not the console script"


def test_the_build_context_leaves_out_development_files() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".tools", ".data", ".git", "tests", "bench"} <= ignored
    # What the build stage copies must be in the context.
    assert not {"uv.lock", "pyproject.toml", "tools", "app", "README.md", "LICENSE"} & ignored


def test_the_license_file_is_the_apache_license_pyproject_names() -> None:
    project = pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
    assert len(re.findall(r"^\s+\d\. ", text, flags=re.MULTILINE)) == 9  # sections 1-9 of the terms


def test_the_build_backend_reads_the_spdx_license_and_is_pinned_with_hashes() -> None:
    config = pyproject()
    (backend,) = config["build-system"]["requires"]
    assert backend == "setuptools>=77"  # the first setuptools that reads `license = "Apache-2.0"` (PEP 639)
    uv = config["tool"]["uv"]
    assert uv["require-build-hashes"] is True
    (pin,) = uv["build-constraint-dependencies"]
    name, _, version = pin["requirement"].partition("==")
    assert name == "setuptools" and int(version.split(".")[0]) >= 77
    assert pin["hashes"] and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin["hashes"])
