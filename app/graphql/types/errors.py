"""The error members of mutation result unions, and the one mapping from the domain's error tree.

A mutation only returns its success type; when a use case raises a domain error, Strawberry's
schema-level exception handling (``EXCEPTION_HANDLERS``, given to the schema) answers with the
member of that mutation's union for it — but only where the union has that member, so any other
error stays a GraphQL error with its ``extensions.code``.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from app.domain import errors


@strawberry.interface(description="An expected failure, with a message written for the person at the screen.")
class Error:
    message: str
    code: str


@strawberry.type(
    description="The token is unknown, malformed, expired or revoked, or of a kind that cannot be used."
)
class InvalidTokenError(Error):
    pass


@strawberry.type(description="The token or login lacks scopes or permissions the service needs.")
class MissingPermissionsError(Error):
    missing: list[str]
    granted: list[str]
    unverified: list[str] = strawberry.field(
        description="Permissions the host's answers could neither prove nor disprove."
    )


@strawberry.type(description="The GitLab user holds a role below Maintainer.")
class InsufficientRoleError(Error):
    required: str
    actual: str | None


@strawberry.type(
    description="The host may not be contacted (not https, private address, ...) or is not a Git host."
)
class HostNotAllowedError(Error):
    host: str


@strawberry.type(description="The Git host is down, slow or rate limiting; try again later.")
class ProviderUnavailableError(Error):
    retry_after_seconds: int | None


@strawberry.type(
    description="OAuth is not configured for this provider; the message names the variables to set."
)
class OAuthNotConfiguredError(Error):
    variables: list[str]


@strawberry.type(description="The OAuth state is unknown, expired, already used or belongs to another user.")
class InvalidOAuthStateError(Error):
    pass


@strawberry.type(description="The Git host refused the authorization code.")
class OAuthExchangeError(Error):
    reason: str | None


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
    message, code = exc.message, exc.code
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
