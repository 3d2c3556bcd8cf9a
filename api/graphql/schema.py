"""The GraphQL schema: queries, mutations and the ``runEvents`` subscription, with the limits."""

from __future__ import annotations

import strawberry

from api.graphql.errors import ErrorCodes
from api.graphql.limits import limit_extensions
from api.graphql.mutations import Mutation
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[*limit_extensions(), ErrorCodes],
)


def print_schema() -> str:
    """The schema in SDL, as checked into ``docs/graphql-schema.graphql``."""
    return schema.as_str() + "\n"
