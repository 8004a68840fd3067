"""The Strawberry schema: queries, mutations, limits and error masking in one place."""

from __future__ import annotations

from functools import partial

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from app.graphql.errors import MaskInternalErrors, OperationLog
from app.graphql.mutations.oauth import OAuthMutations
from app.graphql.mutations.tokens import TokenMutations
from app.graphql.queries import Query
from app.graphql.types.integration import IntegrationType

MAX_DEPTH = 10
MAX_TOKENS = 4000
MAX_ALIASES = 30


@strawberry.type
class Mutation(TokenMutations, OAuthMutations):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[IntegrationType],
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
            partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
            partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
            OperationLog,
            MaskInternalErrors,
        ],
    )


schema = build_schema()
