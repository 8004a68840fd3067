"""GraphiQL's docs pane is the manual: graphql-schema-linter (npm, pinned in tools/npm) finds no type, field,
argument, enum value or input field without a description in the schema the service serves."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from app.graphql.schema import schema
from tests.harness import ROOT

LINTER = ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "graphql-schema-linter"
DESCRIPTION_RULES = (
    "types-have-descriptions",
    "fields-have-descriptions",
    "arguments-have-descriptions",
    "enum-values-have-descriptions",
    "input-object-values-have-descriptions",
    "descriptions-are-capitalized",
)


def lint(sdl: str) -> list[dict[str, Any]]:
    """The linter's findings for ``sdl`` under the description rules."""
    node = shutil.which("node")
    assert node is not None, "Node.js is missing (.ci/run installs it)"
    assert LINTER.exists(), "graphql-schema-linter is missing: run `make npm-tools`"
    finished = subprocess.run(
        [node, str(LINTER), "--stdin", "--format", "json", "--rules", ",".join(DESCRIPTION_RULES)],
        input=sdl,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT / "tools" / "npm",  # no configuration file of its own there: only the rules above count
    )
    assert finished.returncode in (0, 1), finished.stderr
    errors: list[dict[str, Any]] = json.loads(finished.stdout)["errors"]
    assert (finished.returncode == 1) == bool(errors)
    return errors


def test_every_type_field_argument_enum_value_and_input_field_has_a_description() -> None:
    findings = lint(schema.as_str())
    assert not findings, "\n".join(f"{f['message']} ({f['rule']})" for f in findings)


def test_the_linter_finds_each_kind_of_gap() -> None:
    """The rules run and see what they should: one gap of each kind in a small schema."""
    undocumented = """
        "A query." type Query { "A field." field(argument: Int): Kind  other(input: Filter): Int }
        enum Kind { "A value." DOCUMENTED  BARE }
        "A filter." input Filter { text: String }
        type Thing { "lower case start." name: String }
    """
    findings = {(f["rule"], f["message"]) for f in lint(undocumented)}
    rules = {rule for rule, _ in findings}
    assert rules == set(DESCRIPTION_RULES), findings
    assert any("Query.other" in message for _, message in findings)  # fields
    assert any("BARE" in message for _, message in findings)  # enum values
    assert any("Filter.text" in message for _, message in findings)  # input fields
