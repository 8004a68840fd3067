"""The fake GitHub as the builder meets it: the GitHub App's own endpoints and the Git servers.

Rules and their sources (``/work/shared/provider-facts.md``, "Learned since", unless a link says otherwise):

- The app authenticates with a JWT signed RS256 by its private key: ``iss`` the app id, ``exp`` at most 10
  minutes after ``iat``; anything else is 401 "A JSON web token could not be decoded" (docs.github.com,
  "Generating a JSON Web Token (JWT) for a GitHub App").
- ``GET /repos/{o}/{r}/installation``: the app's installation covering the repository, else 404.
- ``POST /app/installations/{id}/access_tokens {repositories, permissions}`` → 201 ``{token: "ghs_…",
  expires_at}`` (1 hour); a repository outside the installation, or a permission it does not hold, is 422
  (docs.github.com, "Create an installation access token for an app").
- Git over HTTPS (``GET /{owner}/{repo}.git/info/refs?service=git-upload-pack``, Git's smart HTTP
  protocol): Basic authentication, ``x-access-token:TOKEN`` for installation tokens, any user name with a
  personal token; a private repository answers 401 to anyone else.
- Git over SSH is modelled, not spoken: ``POST /_ssh/{owner}/{repo}.git`` takes a public key, a challenge
  and the key's Ed25519 signature of the challenge (what SSH's publickey authentication proves) and
  accepts a deploy key of *that* repository only; the answer carries the host key's signature of the
  same challenge, so the client can check the host against ``known_hosts`` (the keys ``/meta`` lists).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.responses import Response

from tests.fakes._github_common import basic_auth, github_error
from tests.fakes._github_models import GitHubInstallation, GitHubRepository
from tests.fakes._github_permissions import moved_to
from tests.fakes._http import Call, Router, iso, json_response

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

TOKEN_LIFETIME = 3600
JWT_MAX_LIFETIME = 600
CLOCK_SKEW = 60
TOKEN_DOCS = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
_ALPHABET = string.ascii_letters + string.digits


class AppEndpoints:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def register(self, router: Router, api: str) -> None:
        router.add("GET", f"{api}/repos/{{owner}}/{{repo}}/installation", self.repository_installation)
        router.add("POST", f"{api}/app/installations/{{id}}/access_tokens", self.access_token)
        router.add("GET", "/{owner}/{repo}/info/refs", self.git_refs)
        router.add("POST", "/_ssh/{owner}/{repo}", self.ssh_auth)

    # --- the app's JWT -------------------------------------------------------------------------------

    def _app_jwt_refusal(self, call: Call) -> Response | None:
        fake = self.fake
        header = call.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or fake.app_public_pem is None:
            return github_error(401, "A JSON web token could not be decoded")
        try:
            decoded = jwt.decode(value.strip(), RSAKey.import_key(fake.app_public_pem), algorithms=["RS256"])
        except (JoseError, ValueError):
            return github_error(401, "A JSON web token could not be decoded")
        claims = decoded.claims
        now = fake.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if str(claims.get("iss")) != str(fake.app_id) or not isinstance(iat, int) or not isinstance(exp, int):
            return github_error(401, "A JSON web token could not be decoded")
        if exp - iat > JWT_MAX_LIFETIME + CLOCK_SKEW or exp <= now or iat > now + CLOCK_SKEW:
            return github_error(
                401,
                "'Expiration time' claim ('exp') is too far in the future"
                if exp - iat > JWT_MAX_LIFETIME + CLOCK_SKEW
                else "Bad credentials",
            )
        fake.app_jwt_count += 1
        return None

    def _installation_on(self, repo: GitHubRepository) -> GitHubInstallation | None:
        return next(
            (
                i
                for i in self.fake.installations.values()
                if i.app_id == self.fake.app_id and i.includes(repo) and not i.suspended
            ),
            None,
        )

    def repository_installation(self, call: Call) -> Response:
        refused = self._app_jwt_refusal(call)
        if refused is not None:
            return refused
        repo = self.fake.find_repository(f"{call.params['owner']}/{call.params['repo']}")
        moved = self.fake.moved_repository(f"{call.params['owner']}/{call.params['repo']}")
        if repo is None and moved is not None and self._installation_on(moved) is not None:
            return moved_to(self.fake, call, moved)  # a renamed repository, as for every other endpoint
        installation = self._installation_on(repo) if repo is not None else None
        if installation is None:
            return github_error(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app",
            )
        root = call.root_url()
        return json_response(installation.render(self.fake.html_url or root, root + self.fake.api_prefix))

    def access_token(self, call: Call) -> Response:
        refused = self._app_jwt_refusal(call)
        if refused is not None:
            return refused
        fake = self.fake
        wanted_id = call.params["id"]
        installation = fake.installations.get(int(wanted_id)) if wanted_id.isdigit() else None
        if installation is None or installation.app_id != fake.app_id:
            return github_error(404, "Not Found", TOKEN_DOCS)
        if installation.suspended:
            return github_error(403, "This installation has been suspended", TOKEN_DOCS)
        try:
            body = call.json() or {}
        except ValueError:
            return github_error(400, "Problems parsing JSON", TOKEN_DOCS)
        names = body.get("repositories") or []
        repos = [fake.find_repository(f"{installation.account.login}/{name}") for name in names]
        if any(r is None or not installation.includes(r) for r in repos):
            return github_error(
                422,
                "There is at least one repository that does not exist or is not accessible to the parent installation.",
                TOKEN_DOCS,
            )
        permissions = body.get("permissions") or dict(installation.permissions)
        for name, level in permissions.items():
            held = installation.permissions.get(name)
            if held is None or (level == "write" and held != "write"):
                return github_error(
                    422, "The permissions requested are not granted to this installation.", TOKEN_DOCS
                )
        token = "ghs_" + "".join(secrets.choice(_ALPHABET) for _ in range(36))
        expires = fake.now() + TOKEN_LIFETIME
        covered = [r.full_name for r in repos if r is not None] or [
            r.full_name for r in fake.repositories.values() if installation.includes(r)
        ]
        fake.installation_tokens[token] = {
            "repositories": covered,
            "permissions": permissions,
            "expires_at": expires,
        }
        return json_response(
            {
                "token": token,
                "expires_at": iso(expires),
                "permissions": permissions,
                "repository_selection": "selected" if names else installation.repository_selection,
            },
            201,
        )

    # --- the Git servers -----------------------------------------------------------------------------

    def git_refs(self, call: Call) -> Response:
        repo_part = call.params["repo"]
        if not repo_part.endswith(".git") or call.query.get("service") != "git-upload-pack":
            return Response("Not Found\n", 404, media_type="text/plain")
        repo = self.fake.find_repository(f"{call.params['owner']}/{repo_part[:-4]}")
        if repo is None:
            return Response("Repository not found.\n", 404, media_type="text/plain")
        if self.fake.git_read_allowed(repo, basic_auth(call)):
            self.fake.git_fetches.append(("https", repo.full_name))
            advert = b"001e# service=git-upload-pack\n0000"
            return Response(advert, 200, media_type="application/x-git-upload-pack-advertisement")
        return Response(
            "Invalid username or token. Password authentication is not supported for Git operations.\n",
            401,
            {"WWW-Authenticate": 'Basic realm="GitHub"'},
            media_type="text/plain",
        )

    def ssh_auth(self, call: Call) -> Response:
        repo_part = call.params["repo"]
        repo = self.fake.find_repository(f"{call.params['owner']}/{repo_part.removesuffix('.git')}")
        denied = json_response({"message": "Permission denied (publickey)."}, 403)
        try:
            body: Any = call.json()
            presented = str(body["public_key"]).split()
            challenge = base64.b64decode(body["challenge"])
            signature = base64.b64decode(body["signature"])
            key = serialization.load_ssh_public_key(f"{presented[0]} {presented[1]}".encode())
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
            return denied
        if not isinstance(key, Ed25519PublicKey) or repo is None:
            return denied
        try:
            key.verify(signature, challenge)
        except InvalidSignature:
            return denied
        material = f"{presented[0]} {presented[1]}"
        if not any(k.key == material for k in repo.deploy_keys):
            return denied
        self.fake.git_fetches.append(("ssh", repo.full_name))
        return json_response(
            {
                "host_key": self.fake.ssh_host_public_key(),
                "host_signature": base64.b64encode(self.fake.ssh_host_key.sign(challenge)).decode(),
            }
        )
