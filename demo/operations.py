"""The GraphQL documents the demo sends (seeding) and its tests walk the cheat sheet with."""

from __future__ import annotations

from typing import Any

import httpx

INTEGRATION = """
    id provider host authMethod tokenKind repositoryAccess grantedPermissions manageAccessUrl
    expiresAt reconnectBy status account { login }
"""
CONNECT_TOKEN = f"""
mutation Connect($input: ConnectGitTokenInput!) {{
  connectGitToken(input: $input) {{
    __typename
    ... on Integration {{ {INTEGRATION} }}
    ... on Error {{ code message }}
    ... on MissingPermissionsError {{ missing granted }}
    ... on InsufficientRoleError {{ required actual }}
  }}
}}
"""
CONNECT_OAUTH = """
mutation Start($input: ConnectGitOAuthInput!) {
  connectGitOAuth(input: $input) {
    __typename
    ... on GitOAuthAuthorization { authorizationUrl state }
    ... on Error { code message }
  }
}
"""
COMPLETE_OAUTH = f"""
mutation Complete($input: CompleteGitOAuthInput!) {{
  completeGitOAuth(input: $input) {{
    __typename
    ... on Integration {{ {INTEGRATION} }}
    ... on Error {{ code message }}
  }}
}}
"""
VERIFY = f"""
mutation Verify($input: VerifyGitIntegrationInput!) {{
  verifyGitIntegration(input: $input) {{
    __typename
    ... on Integration {{ {INTEGRATION} }}
    ... on Error {{ code message }}
  }}
}}
"""
INTEGRATIONS = f"{{ integrations {{ {INTEGRATION} }} }}"
REPOSITORIES = """
query Repositories($id: ID!, $search: String, $first: Int, $after: String) {
  integration(id: $id) {
    repositories(search: $search, first: $first, after: $after) {
      totalCount
      notices { reason message url organizations }
      edges { node { id fullName private archived viewerCanAdminister } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
BRANCHES = """
query Branches($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on Repository {
      fullName
      branches(first: $first, after: $after) {
        totalCount
        edges { node { name protected } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""
LINK = """
mutation Link($input: LinkRepositoryInput!) {
  linkRepository(input: $input) {
    __typename
    ... on RepositoryLink { id status webhookUrl repository { fullName } }
    ... on Error { code message }
  }
}
"""
LINKS = "{ repositoryLinks { id status statusMessage lastEventAt repository { fullName } } }"
EVENTS = """
query Events($id: ID!) {
  node(id: $id) {
    ... on RepositoryLink {
      events(first: 50) { edges { node { sequence kind ref after headCommitMessage pusher } } }
    }
  }
}
"""


class GraphQLError(RuntimeError):
    """The service answered errors where the demo expected data."""


async def execute(
    http: httpx.AsyncClient, url: str, jwt: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST one operation as ``jwt``'s user; its ``data`` (a GraphQL error raises ``GraphQLError``)."""
    response = await http.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {jwt}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise GraphQLError(f"{response.status_code}: {body.get('errors')}")
    data: dict[str, Any] = body["data"]
    return data
