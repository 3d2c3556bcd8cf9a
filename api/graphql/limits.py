"""Limits on what one GraphQL operation may ask for: depth, aliases, tokens and cost.

Each limit is checked while the operation is validated, before any resolver runs, so a hostile
query (deeply nested, very wide, or repeating a field under many aliases) is refused at once with
a 400 and one clear error, and costs no database or Prefect call.

Cost: each field costs 1; a field that returns a page costs its page size (``first``, the
default when absent, the maximum when it is a variable) times what one item selects; a plain list
(a run's tasks) counts as :data:`LIST_COST_FACTOR` items.
"""

from __future__ import annotations

from collections.abc import Callable

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from api.graphql.errors import bad_input

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 3000
MAX_COST = 20_000
DEFAULT_PAGE = 20
MAX_PAGE = 100
LIST_COST_FACTOR = 20
PAGED_FIELDS = frozenset({"edges"})
LIST_FIELDS = frozenset({"tasks", "versions", "findings"})


def _page_size(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(0, min(int(argument.value.value), MAX_PAGE))
            return MAX_PAGE  # a variable: assume the largest page
    return DEFAULT_PAGE


class _Cost:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments

    def of(self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += self.of(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    total += self.of(fragment.selection_set, seen | {name})
            if total > MAX_COST:
                return total  # no need to count further
        return total

    def _field(self, field: FieldNode, seen: frozenset[str]) -> int:
        inner = self.of(field.selection_set, seen)
        if field.selection_set is None:
            return 1
        if any(child.name.value in PAGED_FIELDS for child in _fields(field.selection_set)):
            # A connection: its edges repeat once per item of the page.
            return 1 + _page_size(field) * inner
        if field.name.value in LIST_FIELDS:
            return 1 + LIST_COST_FACTOR * inner
        return 1 + inner


def _fields(selection_set: SelectionSetNode) -> list[FieldNode]:
    return [s for s in selection_set.selections if isinstance(s, FieldNode)]


class CostLimit(ValidationRule):
    """Refuses an operation whose estimated cost is over :data:`MAX_COST`."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        definitions = context.document.definitions
        fragments = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
        cost = _Cost(fragments)
        for definition in definitions:
            if isinstance(definition, OperationDefinitionNode):
                estimate = cost.of(definition.selection_set)
                if estimate > MAX_COST:
                    name = definition.name.value if definition.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"operation '{name}' is too complex: its estimated cost exceeds {MAX_COST} "
                            "(ask for smaller pages or fewer fields)",
                            definition,
                            extensions={"code": "QUERY_TOO_COMPLEX"},
                        )
                    )


def limit_extensions() -> list[Callable[[], SchemaExtension]]:
    """Factories of the schema extensions that enforce the limits (fresh ones per operation)."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: AddValidationRules([CostLimit]),
    ]


def page_window(first: int | None, offset: int) -> tuple[int, int]:
    """(limit, offset) of a page; ``first`` outside 1..MAX_PAGE is bad input."""
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise bad_input("first", f"must be between 1 and {MAX_PAGE}")
    return size, offset
