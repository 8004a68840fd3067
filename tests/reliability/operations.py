"""Every operation of the schema, with a document that reads what a leak would show and arguments that reach
storage and the hosts.

``OPERATIONS`` is checked against ``schema.graphql`` (``root_fields``): an operation added to the schema
without an entry here fails the authorization matrix, so it cannot be forgotten there or in the database
outage tests. ``node`` appears twice, once for each kind of id it resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import build_schema

from tests.oauth_support import RETURN_TO

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


@dataclass(frozen=True)
class Targets:
    """The ids an operation is aimed at: someone's integration, repository, sign-in state, link and event."""

    integration: str  # a global id
    repository: str  # a global id
    state: str  # an OAuth state
    token: str  # a token the fake GitHub accepts
    link: str = ""  # a global id of a repository link
    event: str = ""  # a global id of one of its events
    commit: str = "0" * 40  # a commit of the linked repository


@dataclass(frozen=True)
class Operation:
    name: str
    root_field: str  # "Query.integration", "Mutation.connectGitToken"
    document: str
    variables: Callable[[Targets], dict[str, Any]]
    takes_an_id: bool  # aimed at an existing object (integration, repository, state, link or event)
    scope: str | None = None  # a platform service's scope the caller needs (None: a person's token)


INTEGRATION_FIELDS = "id host status account { login } grantedPermissions lastVerifiedAt"
ERROR_FIELDS = "... on Error { code message }"
LINK_FIELDS = "id branch status webhookUrl lastEventAt repository { fullName } integration { id }"
EVENT_FIELDS = "id kind ref after headCommitMessage pusher deliveryId sequence"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "integrations",
        "Query.integrations",
        f"query Integrations {{ integrations {{ {INTEGRATION_FIELDS} }} }}",
        lambda t: {},
        takes_an_id=False,
    ),
    Operation(
        "integration",
        "Query.integration",
        f"""query Integration($id: ID!) {{ integration(id: $id) {{ {INTEGRATION_FIELDS}
              repositories(first: 5) {{ totalCount edges {{ node {{ id fullName }} }} }} }} }}""",
        lambda t: {"id": t.integration},
        takes_an_id=True,
    ),
    Operation(
        "node(Integration)",
        "Query.node",
        f"""query Node($id: ID!) {{ node(id: $id) {{ id
              ... on Integration {{ {INTEGRATION_FIELDS} repositories(first: 5) {{ totalCount }} }} }} }}""",
        lambda t: {"id": t.integration},
        takes_an_id=True,
    ),
    Operation(
        "node(Repository)",
        "Query.node",
        """query Node($id: ID!) { node(id: $id) { id
              ... on Repository { fullName private viewerCanAdminister
                branches(first: 5) { totalCount edges { cursor node { name commitSha protected } } } } } }""",
        lambda t: {"id": t.repository},
        takes_an_id=True,
    ),
    Operation(
        "connectGitToken",
        "Mutation.connectGitToken",
        f"""mutation Connect($input: ConnectGitTokenInput!) {{ connectGitToken(input: $input) {{
              __typename ... on Integration {{ {INTEGRATION_FIELDS} }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"provider": "GITHUB", "token": t.token}},
        takes_an_id=False,
    ),
    Operation(
        "updateGitToken",
        "Mutation.updateGitToken",
        f"""mutation Update($id: ID!, $token: String!) {{ updateGitToken(input: {{id: $id, token: $token}}) {{
              __typename ... on Integration {{ {INTEGRATION_FIELDS} }} {ERROR_FIELDS} }} }}""",
        lambda t: {"id": t.integration, "token": t.token},
        takes_an_id=True,
    ),
    Operation(
        "verifyGitIntegration",
        "Mutation.verifyGitIntegration",
        f"""mutation Verify($id: ID!) {{ verifyGitIntegration(input: {{id: $id}}) {{
              __typename ... on Integration {{ {INTEGRATION_FIELDS} }} {ERROR_FIELDS} }} }}""",
        lambda t: {"id": t.integration},
        takes_an_id=True,
    ),
    Operation(
        "disconnectGitIntegration",
        "Mutation.disconnectGitIntegration",
        f"""mutation Disconnect($id: ID!) {{ disconnectGitIntegration(input: {{id: $id}}) {{
              __typename ... on DisconnectedIntegration {{ id hostNotified message }} {ERROR_FIELDS} }} }}""",
        lambda t: {"id": t.integration},
        takes_an_id=True,
    ),
    Operation(
        "connectGitOAuth",
        "Mutation.connectGitOAuth",
        f"""mutation Start($input: ConnectGitOAuthInput!) {{ connectGitOAuth(input: $input) {{
              __typename ... on GitOAuthAuthorization {{ authorizationUrl state }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"provider": "GITHUB", "returnTo": RETURN_TO}},
        takes_an_id=False,
    ),
    Operation(
        "completeGitOAuth",
        "Mutation.completeGitOAuth",
        f"""mutation Complete($input: CompleteGitOAuthInput!) {{ completeGitOAuth(input: $input) {{
              __typename ... on Integration {{ {INTEGRATION_FIELDS} }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"state": t.state, "code": "0123456789abcdef0123"}},
        takes_an_id=True,
    ),
    Operation(
        "repositoryLinks",
        "Query.repositoryLinks",
        f"query Links {{ repositoryLinks {{ {LINK_FIELDS} }} }}",
        lambda t: {},
        takes_an_id=False,
    ),
    Operation(
        "node(RepositoryLink)",
        "Query.node",
        f"""query Node($id: ID!) {{ node(id: $id) {{ id
              ... on RepositoryLink {{ {LINK_FIELDS} events(first: 5) {{ edges {{ node {{ {EVENT_FIELDS} }} }} }} }} }} }}""",
        lambda t: {"id": t.link},
        takes_an_id=True,
    ),
    Operation(
        "node(RepositoryEvent)",
        "Query.node",
        f"query Node($id: ID!) {{ node(id: $id) {{ id ... on RepositoryEvent {{ {EVENT_FIELDS} }} }} }}",
        lambda t: {"id": t.event},
        takes_an_id=True,
    ),
    Operation(
        "linkRepository",
        "Mutation.linkRepository",
        f"""mutation Link($input: LinkRepositoryInput!) {{ linkRepository(input: $input) {{
              __typename ... on RepositoryLink {{ {LINK_FIELDS} }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"repositoryId": t.repository}},
        takes_an_id=True,
    ),
    Operation(
        "unlinkRepository",
        "Mutation.unlinkRepository",
        f"""mutation Unlink($input: UnlinkRepositoryInput!) {{ unlinkRepository(input: $input) {{
              __typename ... on UnlinkedRepository {{ id hostCleanedUp stayed: message }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"id": t.link}},
        takes_an_id=True,
    ),
    Operation(
        "setCommitStatus",
        "Mutation.setCommitStatus",
        f"""mutation Status($input: SetCommitStatusInput!) {{ setCommitStatus(input: $input) {{
              __typename ... on CommitStatus {{ sha state context }} {ERROR_FIELDS} }} }}""",
        lambda t: {
            "input": {"linkId": t.link, "sha": t.commit, "state": "SUCCESS", "context": "deploy/production"}
        },
        takes_an_id=True,
        scope="git:deploy",
    ),
    Operation(
        "cloneCredentials",
        "Mutation.cloneCredentials",
        f"""mutation Clone($input: CloneCredentialsInput!) {{ cloneCredentials(input: $input) {{
              __typename ... on CloneCredentials {{ url username password sshPrivateKey }} {ERROR_FIELDS} }} }}""",
        lambda t: {"input": {"linkId": t.link}},
        takes_an_id=True,
        scope="git:clone",
    ),
)
# What a platform service's token may read besides its own scope's mutation (the deployer reads links).
READABLE_WITH_SCOPE = {"git:deploy": {"repositoryLinks", "node(RepositoryLink)", "node(RepositoryEvent)"}}


def allowed(operation: Operation, scope: str | None) -> bool:
    """Whether a caller with ``scope`` (None: a person) may use ``operation`` at all."""
    if scope is None:
        return operation.scope is None
    return operation.scope == scope or operation.name in READABLE_WITH_SCOPE.get(scope, set())


def root_fields() -> set[str]:
    """``Query.x`` and ``Mutation.y`` for every root field of the exported schema."""
    schema = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
    found: set[str] = set()
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if root is not None:
            found |= {f"{root.name}.{field}" for field in root.fields}
    return found
