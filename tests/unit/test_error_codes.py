"""ErrorCode lists exactly the codes the service can answer with, so a client can switch over it exhaustively."""

from __future__ import annotations

import ast
from pathlib import Path

from app.domain import errors
from app.graphql.schema import schema
from app.graphql.types.errors import EXCEPTION_HANDLERS, ErrorCode, member_for

APP = Path(__file__).resolve().parents[2] / "app"


def public_error_classes() -> list[type[errors.PublicError]]:
    found: list[type[errors.PublicError]] = []
    pending: list[type[errors.PublicError]] = [errors.PublicError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def literal_codes_in_app() -> set[str]:
    """Every ``"code": "X"`` written as a literal in app/ (extensions built by hand, not from an error)."""
    codes = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        codes.add(value.value)
    return codes


def test_every_code_of_the_error_tree_and_of_hand_made_extensions_is_an_error_code_and_no_other() -> None:
    emitted = {cls.code for cls in public_error_classes()} | literal_codes_in_app()
    assert emitted == {member.value for member in ErrorCode}


def test_every_union_member_answers_its_code_as_the_enum() -> None:
    for handler in EXCEPTION_HANDLERS:
        exception_type = handler.exception_type
        # The smallest valid instance of each domain error.
        arguments: dict[type[errors.PublicError], tuple[object, ...]] = {
            errors.MissingPermissionsError: ("m", ["a"], ["b"]),
            errors.InsufficientRoleError: ("m", "Maintainer", None),
            errors.HostNotAllowedError: ("m", "example.com"),
            errors.ProviderUnavailableError: ("m",),
            errors.OAuthNotConfiguredError: ("m", ["GITHUB_CLIENT_ID"]),
            errors.OAuthExchangeError: ("m",),
            errors.LimitReachedError: ("m", 50),
        }
        exc = exception_type(*arguments.get(exception_type, ("m",)))
        member = member_for(exc)
        assert member.code is ErrorCode(exception_type.code)
        assert isinstance(member, handler.error_type)


def test_the_schema_types_error_code_as_the_enum() -> None:
    sdl = schema.as_str()
    assert "interface Error {" in sdl
    error_interface = sdl.split("interface Error {", 1)[1].split("}", 1)[0]
    assert "code: ErrorCode!" in error_interface
