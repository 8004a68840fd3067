"""The error members of mutation result unions, and the one mapping from the domain's error tree.

A mutation only returns its success type; when a use case raises a domain error, Strawberry's
schema-level exception handling (``EXCEPTION_HANDLERS``, given to the schema) answers with the
member of that mutation's union for it — but only where the union has that member, so any other
error stays a GraphQL error with its ``extensions.code``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from app.domain import errors


@strawberry.enum(
    description="Every code the service answers with: `Error.code` of a mutation's failure member, and "
    "`extensions.code` of a GraphQL error (queries, and anything a mutation's union has no member for). "
    "New values may be added; treat an unknown one like INTERNAL."
)
class ErrorCode(Enum):
    # Errors of a request as a whole or of a query's field (extensions.code).
    UNAUTHENTICATED = strawberry.enum_value(
        "UNAUTHENTICATED",
        description="No caller: the request has no `Authorization: Bearer <JWT>`, or the JWT is malformed, "
        "expired or not signed by the platform. Sign in again.",
    )
    FORBIDDEN = strawberry.enum_value(
        "FORBIDDEN",
        description="The caller's JWT lacks the scope this operation needs (`git:deploy`, `git:clone`), or a "
        "service token asked for something only its user may see.",
    )
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND",
        description="No such object, or it belongs to someone else (the two are never told apart).",
    )
    BAD_USER_INPUT = strawberry.enum_value(
        "BAD_USER_INPUT",
        description="An argument is wrong (a `first` out of range, a cursor from another list, a search "
        "too long); `message` says which.",
    )
    QUERY_TOO_COMPLEX = strawberry.enum_value(
        "QUERY_TOO_COMPLEX",
        description="The request would start more work at the Git hosts than one request may "
        "(`extensions.cost` and `extensions.budget`); nothing was run. Ask for less at once.",
    )
    NEEDS_RECONNECT = strawberry.enum_value(
        "NEEDS_RECONNECT",
        description="The Git host no longer accepts the integration's token (revoked, expired login): "
        "connect the account again.",
    )
    RATE_LIMITED = strawberry.enum_value(
        "RATE_LIMITED",
        description="The Git host's rate limit for this account is used up; `retryAfterSeconds` (or "
        "`extensions.retryAfterSeconds`) says when to try again, when the host said.",
    )
    PROVIDER_UNAVAILABLE = strawberry.enum_value(
        "PROVIDER_UNAVAILABLE",
        description="The Git host is down, too slow or answered nonsense; try again later.",
    )
    SERVICE_UNAVAILABLE = strawberry.enum_value(
        "SERVICE_UNAVAILABLE",
        description="This service cannot reach its database right now; try again shortly.",
    )
    INTERNAL = strawberry.enum_value(
        "INTERNAL",
        description="A fault of this service, not of the request: the message carries a request id "
        "(`extensions.requestId`) to report; the details are in the service's log.",
    )
    # Failure members of the connect and token mutations (Error.code).
    INVALID_TOKEN = strawberry.enum_value(
        "INVALID_TOKEN",
        description="InvalidTokenError: the token is unknown, malformed, expired or revoked, or of a kind "
        "that cannot be used here.",
    )
    MISSING_PERMISSIONS = strawberry.enum_value(
        "MISSING_PERMISSIONS",
        description="MissingPermissionsError: the token or login lacks scopes or permissions (`missing`).",
    )
    INSUFFICIENT_ROLE = strawberry.enum_value(
        "INSUFFICIENT_ROLE",
        description="InsufficientRoleError: the GitLab user's role is below Maintainer.",
    )
    HOST_NOT_ALLOWED = strawberry.enum_value(
        "HOST_NOT_ALLOWED",
        description="HostNotAllowedError: the host may not be contacted (not https, a private address) or "
        "is not a Git host.",
    )
    OAUTH_NOT_CONFIGURED = strawberry.enum_value(
        "OAUTH_NOT_CONFIGURED",
        description="OAuthNotConfiguredError: the operator has not set up login with this host "
        "(`variables`).",
    )
    INVALID_OAUTH_STATE = strawberry.enum_value(
        "INVALID_OAUTH_STATE",
        description="InvalidOAuthStateError: the login's state is unknown, expired, used or another "
        "user's; start the login again.",
    )
    OAUTH_EXCHANGE_FAILED = strawberry.enum_value(
        "OAUTH_EXCHANGE_FAILED",
        description="OAuthExchangeError: the Git host refused the authorization code.",
    )
    LIMIT_REACHED = strawberry.enum_value(
        "LIMIT_REACHED",
        description="LimitReachedError: the user has as many integrations as allowed (`limit`).",
    )


@strawberry.interface(description="An expected failure, with a message written for the person at the screen.")
class Error:
    message: str = strawberry.field(
        description="What went wrong and what to do about it, written to be shown to the user as it is."
    )
    code: ErrorCode = strawberry.field(
        description="The failure as a value a program can switch on (each member type has its own)."
    )


@strawberry.type(
    description="The token is unknown, malformed, expired or revoked, or of a kind that cannot be used."
)
class InvalidTokenError(Error):
    pass


@strawberry.type(description="The token or login lacks scopes or permissions the service needs.")
class MissingPermissionsError(Error):
    missing: list[str] = strawberry.field(
        description='What the token or login lacks, as the host names it: scopes ("repo", "api") or '
        'fine-grained permissions ("contents:write"); grant these at the host and connect again.'
    )
    granted: list[str] = strawberry.field(
        description="What the host confirmed the token or login has, in the same notation."
    )
    unverified: list[str] = strawberry.field(
        description="Permissions the host's answers could neither prove nor disprove."
    )


@strawberry.type(description="The GitLab user holds a role below Maintainer.")
class InsufficientRoleError(Error):
    required: str = strawberry.field(description='The role needed, e.g. "Maintainer".')
    actual: str | None = strawberry.field(
        description='The role the user holds, e.g. "Developer"; null when GitLab did not say.'
    )


@strawberry.type(
    description="The host may not be contacted (not https, private address, ...) or is not a Git host."
)
class HostNotAllowedError(Error):
    host: str = strawberry.field(description="The host as the service understood what was entered.")


@strawberry.type(description="The Git host is down, slow or rate limiting; try again later.")
class ProviderUnavailableError(Error):
    retry_after_seconds: int | None = strawberry.field(
        description="Seconds to wait before trying again, when the host said (a rate limit's reset); null "
        "when it did not."
    )


@strawberry.type(
    description="OAuth is not configured for this provider; the message names the variables to set."
)
class OAuthNotConfiguredError(Error):
    variables: list[str] = strawberry.field(
        description='The configuration variables the operator must set, e.g. "GITHUB_CLIENT_ID".'
    )


@strawberry.type(description="The OAuth state is unknown, expired, already used or belongs to another user.")
class InvalidOAuthStateError(Error):
    pass


@strawberry.type(description="The Git host refused the authorization code.")
class OAuthExchangeError(Error):
    reason: str | None = strawberry.field(
        description="Why, as a short code for logs and support: the host's own OAuth error code (e.g. "
        '"invalid_grant", "redirect_uri_mismatch") or the service\'s ("missing_code", "invalid_code", '
        '"not_configured", ...); null when there is none.'
    )


@strawberry.type(description="No object with this id (or it belongs to someone else); `message` says which.")
class NotFoundError(Error):
    pass


@strawberry.type(
    description="The user already has as many integrations as the service allows; disconnecting one "
    "makes room. Connecting an account that is already connected updates it and never answers this."
)
class LimitReachedError(Error):
    limit: int = strawberry.field(description="How many integrations one user may have.")


@strawberry.type(
    description="The Git host no longer accepts the connection's token: connect it again (the integration's "
    "status is NEEDS_RECONNECT)."
)
class NeedsReconnectError(Error):
    pass


ErrorType = (
    InvalidTokenError
    | MissingPermissionsError
    | InsufficientRoleError
    | HostNotAllowedError
    | ProviderUnavailableError
    | OAuthNotConfiguredError
    | InvalidOAuthStateError
    | OAuthExchangeError
    | NotFoundError
    | LimitReachedError
    | NeedsReconnectError
)


def member_for(exc: errors.PublicError) -> ErrorType:
    """The GraphQL member for a domain error; unknown public errors are a programming mistake."""
    message, code = exc.message, ErrorCode(exc.code)
    match exc:
        case errors.InvalidTokenError():
            return InvalidTokenError(message=message, code=code)
        case errors.MissingPermissionsError():
            return MissingPermissionsError(
                message=message,
                code=code,
                missing=exc.missing,
                granted=exc.granted,
                unverified=exc.unverified,
            )
        case errors.InsufficientRoleError():
            return InsufficientRoleError(message=message, code=code, required=exc.required, actual=exc.actual)
        case errors.HostNotAllowedError():
            return HostNotAllowedError(message=message, code=code, host=exc.host)
        case errors.ProviderUnavailableError():
            return ProviderUnavailableError(
                message=message, code=code, retry_after_seconds=exc.retry_after_seconds
            )
        case errors.OAuthNotConfiguredError():
            return OAuthNotConfiguredError(message=message, code=code, variables=exc.variables)
        case errors.InvalidOAuthStateError():
            return InvalidOAuthStateError(message=message, code=code)
        case errors.OAuthExchangeError():
            return OAuthExchangeError(message=message, code=code, reason=exc.reason)
        case errors.NotFoundError():
            return NotFoundError(message=message, code=code)
        case errors.LimitReachedError():
            return LimitReachedError(message=message, code=code, limit=exc.limit)
        case errors.NeedsReconnectError():
            return NeedsReconnectError(message=message, code=code)
    raise TypeError(f"no GraphQL type for {type(exc).__name__}")


class _UnionMember:
    """A Strawberry exception handler: ``exception_type`` becomes the union member ``error_type``."""

    def __init__(self, exception_type: type[errors.PublicError], error_type: type[Error]) -> None:
        self.exception_type = exception_type
        self.error_type = error_type

    def handle(self, exception: errors.PublicError, *, field: StrawberryField, info: Any) -> ErrorType:
        return member_for(exception)


# Subclasses before their bases: the first handler whose exception type matches wins.
EXCEPTION_HANDLERS = (
    _UnionMember(errors.InvalidTokenError, InvalidTokenError),
    _UnionMember(errors.MissingPermissionsError, MissingPermissionsError),
    _UnionMember(errors.InsufficientRoleError, InsufficientRoleError),
    _UnionMember(errors.HostNotAllowedError, HostNotAllowedError),
    _UnionMember(errors.ProviderUnavailableError, ProviderUnavailableError),  # RateLimitedError too
    _UnionMember(errors.OAuthNotConfiguredError, OAuthNotConfiguredError),
    _UnionMember(errors.InvalidOAuthStateError, InvalidOAuthStateError),
    _UnionMember(errors.OAuthExchangeError, OAuthExchangeError),
    _UnionMember(errors.NotFoundError, NotFoundError),
    _UnionMember(errors.LimitReachedError, LimitReachedError),
    _UnionMember(errors.NeedsReconnectError, NeedsReconnectError),
)
