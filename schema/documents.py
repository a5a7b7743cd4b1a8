"""What the server learns of a GraphQL document once, kept for the next request that sends the
same text: its parsed form, that it passed the standard validation rules, whether its string
literals can be stored (schema/input_text.py), and its figures for the query limits
(schema/query_guard.py). A client sends the same few documents again and again (only the
variables change), and parsing, validating and analysing one costs more than executing most of
them.

Every verdict is one the same text always gets: the figures depend on the variables too, but
only on those a `first:` reads, so they are kept per value of those. Documents that fail to
parse or to validate are not kept: they are answered as before, from scratch, every time.

Bounded so that a client sending ever new documents cannot grow the memory: at most
`MAX_DOCUMENTS` texts and `MAX_TOTAL_TEXT` characters in all (the least recently used go first;
a parsed document weighs ≈ 110 bytes per character of dense text, so ≈ 30 MB at most), none
longer than `MAX_TEXT` characters, each with the figures of at most `MAX_PRICINGS` page
sizes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from schema.query_cost import Analysis, page_value

MAX_DOCUMENTS = 256
# The tokens of a document are limited (CAREBILL_MAX_TOKENS), not its characters: this bounds
# what a kept text weighs. The longest of the documentation's queries is under 2,000.
MAX_TEXT = 20_000
MAX_TOTAL_TEXT = 256_000
MAX_PRICINGS = 16

_Key = tuple[str, tuple[tuple[str, Any], ...]]
_Rules = tuple[type[ASTValidationRule], ...]


@dataclass(eq=False)
class DocumentFacts:
    """One document text and what is known of it so far."""

    document: DocumentNode
    # The rule sets the document passed without an error (one, unless introspection is off).
    validated: set[_Rules] = field(default_factory=set)
    storable_literals: bool | None = None
    # Which variables the figures read (None: not analysed yet), and the figures by their values.
    priced_variables: tuple[str, ...] | None = None
    analyses: OrderedDict[tuple[int | None, ...], Analysis] = field(default_factory=OrderedDict)

    def _pricing(self, names: tuple[str, ...], variables: Mapping[str, Any] | None) -> Any:
        values = variables or {}
        return tuple(page_value(values.get(name)) for name in names)

    def analysis(self, variables: Mapping[str, Any] | None) -> Analysis | None:
        """The figures already found for these variables, if any."""
        if self.priced_variables is None:
            return None
        return self.analyses.get(self._pricing(self.priced_variables, variables))

    def keep_analysis(self, variables: Mapping[str, Any] | None, analysis: Analysis) -> None:
        self.priced_variables = analysis.priced_variables
        self.analyses[self._pricing(analysis.priced_variables, variables)] = analysis
        if len(self.analyses) > MAX_PRICINGS:
            self.analyses.popitem(last=False)


class DocumentCache:
    """The documents one schema has seen lately, by text and parse options."""

    def __init__(
        self,
        max_documents: int = MAX_DOCUMENTS,
        max_text: int = MAX_TEXT,
        max_total_text: int = MAX_TOTAL_TEXT,
    ) -> None:
        self.max_documents = max_documents
        self.max_text = max_text
        self.max_total_text = max_total_text
        self._entries: OrderedDict[_Key, DocumentFacts] = OrderedDict()
        self.total_text = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _key(self, context: ExecutionContext) -> _Key | None:
        query = context.query
        if not query or len(query) > self.max_text:
            return None
        return query, tuple(sorted(context.parse_options.items()))

    def parsed(self, context: ExecutionContext) -> DocumentNode | None:
        """The document this request's text parses to, when it was parsed before."""
        key = self._key(context)
        facts = self._entries.get(key) if key is not None else None
        if facts is None:
            return None
        self._entries.move_to_end(key)  # type: ignore[arg-type]
        return facts.document

    def keep(self, context: ExecutionContext) -> None:
        """Keeps the document this request's text was just parsed to."""
        key = self._key(context)
        if key is None or context.graphql_document is None:
            return
        replaced = self._entries.pop(key, None)
        if replaced is not None:
            self.total_text -= len(key[0])
        self._entries[key] = DocumentFacts(context.graphql_document)
        self.total_text += len(key[0])
        while len(self._entries) > self.max_documents or self.total_text > self.max_total_text:
            (text, _), _ = self._entries.popitem(last=False)
            self.total_text -= len(text)

    def facts(self, context: ExecutionContext) -> DocumentFacts | None:
        """What is known of the request's document (None when it is not kept)."""
        key = self._key(context)
        facts = self._entries.get(key) if key is not None else None
        if facts is None or facts.document is not context.graphql_document:
            return None
        return facts


class CachedDocuments(SchemaExtension):
    """Parsing and standard validation, skipped for a text seen before: the kept document, and
    no validation errors when it passed the same rules already. Listed after the extensions
    whose `on_validate` refuses documents first (the query limits, unstorable text)."""

    def __init__(self, *, documents: DocumentCache) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        known = None
        if context.graphql_document is None:
            known = context.graphql_document = self.documents.parsed(context)
        yield
        if known is None and context.graphql_document is not None:
            self.documents.keep(context)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        facts = self.documents.facts(context)
        rules = context.validation_rules
        passed = facts is not None and rules in facts.validated
        if passed and context.pre_execution_errors is None:
            # Standard validation runs only while no extension has set these.
            context.pre_execution_errors = []
        yield
        if facts is not None and not passed and context.pre_execution_errors == []:
            facts.validated.add(rules)
