"""Every failure the service expects, as one tree.

Each public error carries the sentence the person at the screen reads (``message``) and the
code a program reads (``code``). The GraphQL layer turns mutation failures into members of
the result unions and query failures into GraphQL errors with ``extensions.code``; anything
that is *not* a ``PublicError`` is masked as "Internal error" and only logged.

    PublicError
    ├── BadUserInputError            BAD_USER_INPUT     the request itself is wrong
    ├── QueryTooComplexError         QUERY_TOO_COMPLEX  it would start more work at the hosts than allowed
    ├── UnauthenticatedError         UNAUTHENTICATED    no, expired or badly signed caller JWT
    ├── ForbiddenError               FORBIDDEN          the caller's JWT lacks the scope an operation needs
    ├── NotFoundError                NOT_FOUND          missing, or another user's (never told apart)
    ├── NeedsReconnectError          NEEDS_RECONNECT    the host no longer accepts the stored token
    ├── ServiceUnavailableError      SERVICE_UNAVAILABLE our database cannot be reached
    ├── ProviderUnavailableError     PROVIDER_UNAVAILABLE the Git host is down, slow or refusing
    │   └── RateLimitedError         RATE_LIMITED       ... because of its rate limit
    └── ConnectError                                    why a token / login could not be connected
        ├── InvalidTokenError        unknown, malformed, expired or revoked token
        ├── MissingPermissionsError  scopes / permissions missing (missing, granted, unverified)
        ├── InsufficientRoleError    GitLab role below Maintainer
        ├── HostNotAllowedError      a host that may not be contacted (SSRF guard) or is not a Git host
        ├── OAuthNotConfiguredError  no client id / secret for the provider
        ├── InvalidOAuthStateError   unknown, reused, expired or another user's OAuth state
        ├── OAuthExchangeError       the host refused the authorization code
        └── LimitReachedError        the user already has as many integrations as allowed

``CipherError`` is deliberately *not* public: a ciphertext that does not decrypt is an
operator problem (lost key, tampered database) and must not be explained to callers.
"""

from __future__ import annotations

from collections.abc import Sequence


class PublicError(Exception):
    """An error whose message may be shown to the caller."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        """Read by graphql-core when it wraps this error: becomes the error's ``extensions``."""
        return {"code": self.code}


class BadUserInputError(PublicError):
    code = "BAD_USER_INPUT"


class QueryTooComplexError(PublicError):
    """The request's estimated upstream work (``app.graphql.cost``) is over its budget."""

    code = "QUERY_TOO_COMPLEX"

    def __init__(self, message: str, cost: int, budget: int) -> None:
        super().__init__(message)
        self.cost = cost
        self.budget = budget

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "cost": self.cost, "budget": self.budget}


class UnauthenticatedError(PublicError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in first: send 'Authorization: Bearer <JWT>'.") -> None:
        super().__init__(message)


class ForbiddenError(PublicError):
    code = "FORBIDDEN"


class NotFoundError(PublicError):
    code = "NOT_FOUND"

    def __init__(self, message: str = "No integration with this id.") -> None:
        super().__init__(message)


class NeedsReconnectError(PublicError):
    code = "NEEDS_RECONNECT"

    def __init__(
        self, message: str = "The Git host no longer accepts this connection: connect it again."
    ) -> None:
        super().__init__(message)


class ServiceUnavailableError(PublicError):
    code = "SERVICE_UNAVAILABLE"

    def __init__(
        self, message: str = "The service cannot reach its database right now; try again shortly."
    ) -> None:
        super().__init__(message)


class ProviderUnavailableError(PublicError):
    code = "PROVIDER_UNAVAILABLE"

    def __init__(self, message: str, retry_after_seconds: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def extensions(self) -> dict[str, object]:
        ext: dict[str, object] = {"code": self.code}
        if self.retry_after_seconds is not None:
            ext["retryAfterSeconds"] = self.retry_after_seconds
        return ext


class RateLimitedError(ProviderUnavailableError):
    code = "RATE_LIMITED"


class ConnectError(PublicError):
    """A token or login that could not be connected; only its subclasses are raised, each with its own
    code (a union member of the connect mutations)."""


class InvalidTokenError(ConnectError):
    code = "INVALID_TOKEN"


class MissingPermissionsError(ConnectError):
    code = "MISSING_PERMISSIONS"

    def __init__(
        self,
        message: str,
        missing: Sequence[str],
        granted: Sequence[str],
        unverified: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.granted = list(granted)
        self.unverified = list(unverified)


class InsufficientRoleError(ConnectError):
    code = "INSUFFICIENT_ROLE"

    def __init__(self, message: str, required: str, actual: str | None) -> None:
        super().__init__(message)
        self.required = required
        self.actual = actual


class HostNotAllowedError(ConnectError):
    code = "HOST_NOT_ALLOWED"

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


class OAuthNotConfiguredError(ConnectError):
    code = "OAUTH_NOT_CONFIGURED"

    def __init__(self, message: str, variables: Sequence[str]) -> None:
        super().__init__(message)
        self.variables = list(variables)


class InvalidOAuthStateError(ConnectError):
    code = "INVALID_OAUTH_STATE"

    def __init__(
        self, message: str = "This sign-in link is unknown, expired or already used: start again."
    ) -> None:
        super().__init__(message)


class OAuthExchangeError(ConnectError):
    code = "OAUTH_EXCHANGE_FAILED"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class LimitReachedError(ConnectError):
    code = "LIMIT_REACHED"

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class CipherError(Exception):
    """A stored secret could not be decrypted.

    ``reason``: ``unknown_key`` (its key is not configured), ``legacy`` (written the old way: migrate
    with rotate-keys), ``mismatch`` (tampered with, moved, or its record changed) or ``malformed``.
    """

    def __init__(self, message: str, *, reason: str = "mismatch") -> None:
        super().__init__(message)
        self.reason = reason


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message names the variable."""
