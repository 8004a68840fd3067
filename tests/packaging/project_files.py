"""Readers for the packaging files: the Dockerfile (no Docker engine runs here), pyproject.toml, tools/uv.txt.

Instructions are joined across line continuations, comments dropped, and split into stages; ``ARG``
defaults declared before the first ``FROM`` are substituted into the ``FROM`` lines, as Docker does.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str


@dataclass
class Stage:
    image: str  # the FROM reference, global ARGs substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        """The last stage: what `docker build` produces and what runs."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def instructions(text: str) -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    result = []
    for entry in logical:
        keyword, _, arguments = entry.partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return result


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), text)


def parse(path: Path = ROOT / "Dockerfile") -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.arguments.partition("=")
            global_args[name] = default
        elif instruction.keyword == "FROM":
            reference, _, alias = instruction.arguments.partition(" AS ")
            stages.append(Stage(substitute(reference.strip(), global_args), alias.strip() or None))
        elif stages:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement (PEP 503: lower case, runs of -_. as -)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match[0]).lower()


@dataclass
class PinnedRequirement:
    name: str
    version: str
    hashes: list[str]


def hashed_requirements(path: Path) -> list[PinnedRequirement]:
    """The entries of a `pip install --require-hashes` file: `name==version --hash=sha256:... \\`."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = []
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        hashes = [option.removeprefix("--hash=sha256:") for option in options]
        assert all(option.startswith("--hash=sha256:") for option in options), line
        entries.append(PinnedRequirement(requirement_name(name), version, hashes))
    return entries
