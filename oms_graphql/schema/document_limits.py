"""Limits on GraphQL documents that hold in time linear in the document.

(Field merging, GraphQL's one quadratic validation rule, is kept bounded by
``repeated_field_problem``, checked first.)

A fragment spread twice at each of 20 levels is 2**20 fields when expanded, in a
document of 250 tokens; any check that walks fragments where they are spread
takes seconds on it and blocks the event loop (and ``/healthz``) meanwhile. So
every walk here visits each fragment once and remembers its result.

Also the parse and validation caches: only documents up to
``OMS_CACHE_DOCUMENT_MAX_BYTES`` are kept, keyed by their SHA-256, so five
distinct large documents cannot fill the process's memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    parse,
)
from graphql.language import DocumentNode
from strawberry.extensions import SchemaExtension

MAX_DEPTH_EXCEEDED = "MAX_DEPTH_EXCEEDED"


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def selection_depth(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]) -> int:
    """How many selection sets deep ``selection_set`` goes, fragments included
    (``{ me { name } }`` is 1), each fragment measured once."""
    memo: dict[str, int] = {}

    def depth(selections: SelectionSetNode | None, in_progress: frozenset[str]) -> int:
        deepest = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None:
                    deepest = max(deepest, 1 + depth(selection.selection_set, in_progress))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, depth(selection.selection_set, in_progress))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in memo:
                    fragment = fragments.get(name)
                    # An unknown or cyclic spread is another rule's error; count it as flat.
                    if fragment is None or name in in_progress:
                        continue
                    memo[name] = depth(fragment.selection_set, in_progress | {name})
                deepest = max(deepest, memo[name])
        return deepest

    return depth(selection_set, frozenset())


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing operations deeper than ``max_depth`` (with extensions.code
    ``MAX_DEPTH_EXCEEDED``); one class per limit, so the validation cache can key on it."""
    return _DEPTH_RULES.setdefault(max_depth, type(f"DepthLimit{max_depth}", (_DepthLimit,), {"max_depth": max_depth}))


class _DepthLimit(ValidationRule):
    max_depth: ClassVar[int]

    def enter_document(self, node: DocumentNode, *_args: Any) -> Any:
        fragments = fragments_of(node)
        for definition in node.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            depth = selection_depth(definition.selection_set, fragments)
            if depth > self.max_depth:
                name = definition.name.value if definition.name else "The operation"
                self.report_error(
                    GraphQLError(
                        f"{name} is {depth} levels deep; the depth limit is {self.max_depth}. "
                        "Ask for fewer nested objects, or split the query.",
                        definition,
                        extensions={"code": MAX_DEPTH_EXCEEDED},
                    )
                )
        return self.BREAK


_DEPTH_RULES: dict[int, type[ValidationRule]] = {}

REPEATED_FIELDS_EXCEEDED = "REPEATED_FIELDS_EXCEEDED"
# GraphQL's "fields can be merged" check compares every pair of fields with one response
# name in a selection set (fragments included): quadratic, 1,100 of them take seconds. A
# front-end repeats a field once per fragment that asks for it: a handful, not hundreds.
MAX_SAME_NAME = 50


def repeated_field_problem(document: DocumentNode, limit: int = MAX_SAME_NAME) -> GraphQLError | None:
    """An error when one selection set (with the fragments it spreads, each once, as
    execution merges them) selects one response name more than ``limit`` times."""
    fragments = fragments_of(document)
    memo: dict[str, Counter[str]] = {}

    def names(selections: SelectionSetNode, in_progress: frozenset[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        spread: set[str] = set()
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                counts[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                counts.update(names(selection.selection_set, in_progress))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if name in spread or name in in_progress or fragment is None:
                    continue
                spread.add(name)
                if name not in memo:
                    memo[name] = names(fragment.selection_set, in_progress | {name})
                counts.update(memo[name])
        return counts

    pending: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, (OperationDefinitionNode, FragmentDefinitionNode))
    ]
    while pending:
        selections = pending.pop()
        counts = names(selections, frozenset())
        if counts:
            name, times = counts.most_common(1)[0]
            if times > limit:
                return GraphQLError(
                    f"'{name}' is selected {times} times in one selection set; the limit is {limit}. "
                    "Select each field once (aliases give repeated fields their own names).",
                    selections,
                    extensions={"code": REPEATED_FIELDS_EXCEEDED},
                )
        stack = list(selections.selections)
        while stack:  # the field selection sets below, inline fragments flattened into this one
            selection = stack.pop()
            if isinstance(selection, FieldNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                stack.extend(selection.selection_set.selections)
    return None


class DocumentCache:
    """An LRU of parsed documents and their validation errors, keyed by the SHA-256 of the
    text; documents larger than ``max_bytes`` are never kept."""

    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, Any], Any] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(query: str) -> str:
        return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, digest: str, kind: Any) -> Any:
        with self._lock:
            entry = self._entries.get((digest, kind))
            if entry is not None:
                self._entries.move_to_end((digest, kind))
            return entry

    def put(self, digest: str, kind: Any, value: Any, size: int) -> None:
        with self._lock:
            self._entries[(digest, kind)] = value
            self._sizes[digest] = size
            while len(self._entries) > self.maxsize:
                (old, _), _ = self._entries.popitem(last=False)
                if not any(key[0] == old for key in self._entries):
                    self._sizes.pop(old, None)

    def holds(self, query: str) -> bool:
        digest = self.key(query)
        with self._lock:
            return any(key[0] == digest for key in self._entries)

    def sizes(self) -> list[int]:
        """The size in bytes of each document kept (for tests and benchmarks)."""
        with self._lock:
            return list(self._sizes.values())


DOCUMENT_CACHE = DocumentCache()


class CachedDocuments(SchemaExtension):
    """Parse and validate each small document once (front-ends send the same few over and over)."""

    max_bytes: ClassVar[int] = 16 * 1024

    def _digest(self) -> tuple[str, int] | None:
        query = self.execution_context.query
        if query is None:
            return None
        size = len(query)  # characters: at least a quarter of the bytes, enough for a bound
        if size > self.max_bytes:
            return None
        return DocumentCache.key(query), size

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        cached = self._digest()
        options: dict[str, Any] = dict(context.parse_options)
        kind = ("parse", tuple(sorted(options.items())))
        if cached is not None and context.query is not None:
            document = DOCUMENT_CACHE.get(cached[0], kind)
            if document is None:
                try:
                    document = parse(context.query, **options)
                except (GraphQLError, RecursionError):
                    document = None  # not kept: strawberry parses it again and reports the error
                else:
                    DOCUMENT_CACHE.put(cached[0], kind, document, cached[1])
            context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        cached = self._digest()
        if context.graphql_document is None:
            yield
            return
        kind = ("validate", tuple(context.validation_rules))
        errors = DOCUMENT_CACHE.get(cached[0], kind) if cached is not None else None
        if errors is None:
            errors = self.validate(context.schema._schema, context.graphql_document, tuple(context.validation_rules))
            if cached is not None:
                DOCUMENT_CACHE.put(cached[0], kind, errors, cached[1])
        context.pre_execution_errors = errors
        yield

    @staticmethod
    def validate(schema: Any, document: DocumentNode, rules: tuple) -> list[GraphQLError]:
        """GraphQL's validation, after a linear check that keeps its quadratic field merging bounded."""
        from strawberry.schema.schema import validate_document

        problem = repeated_field_problem(document)
        return [problem] if problem is not None else validate_document(schema, document, rules)
