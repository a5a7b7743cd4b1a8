"""A document sent again is not parsed, validated or analysed again (schema/documents.py), and
what it is answered stays exact: the limits that read variables are checked against each
request's values, refused and invalid documents are refused every time, and the documents kept
are bounded."""

from __future__ import annotations

from typing import Any

from models.enums import Role
from resolvers.root import build_schema
from schema.documents import MAX_DOCUMENTS, MAX_TEXT, MAX_TOTAL_TEXT
from settings import Settings
from tests.api import Api
from tests.conftest import TEST_SECRET_KEY
from tests.factories import World

PAGES = (
    "query($n: Int) { invoices(first: $n) { edges { node { client {"
    " invoices(first: $n) { edges { node { id payments { id } } } } } } } } }"
)
INTROSPECTION = "{ __schema { queryType { name } } }"


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert isinstance(error, dict)
    return error


async def test_a_document_admitted_with_small_pages_is_refused_with_large_ones(
    api: Api, world: World
) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    for _ in range(2):
        assert "errors" not in await api.post(PAGES, {"n": 5}, token=token)
    refused = only_error(await api.post(PAGES, {"n": 100}, token=token))
    assert refused["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert refused["extensions"]["limit"] == "cost"
    # A value that is not an integer prices at the default page size, then fails to coerce.
    assert await api.error_codes(PAGES, {"n": "many"}, token=token) == ["BAD_USER_INPUT"]
    assert "errors" not in await api.post(PAGES, {"n": 5}, token=token)


async def test_refusals_are_given_again_for_the_same_text(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    unstorable = '{ invoices(filter: { clientId: "a\\u0000b" }) { totalCount } }'
    invalid = "{ invoices { nope } }"
    answers = [
        [await api.post(query, token=token) for _ in range(3)] for query in (unstorable, invalid)
    ]
    for first, *again in answers:
        assert first["errors"], first
        assert all(answer == first for answer in again)
    assert answers[0][0]["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert answers[1][0]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # Storable literals are kept as such; the variables are still checked on every request.
    query = "query($q: ID) { invoices(filter: { clientId: $q }) { totalCount } }"
    assert "errors" not in await api.post(query, {"q": "x"}, token=token)
    assert await api.error_codes(query, {"q": "x\u0000"}, token=token) == ["VALIDATION"]


async def test_kept_documents_are_bounded_and_invalid_ones_refused_every_time() -> None:
    schema = build_schema(Settings())
    for n in range(MAX_DOCUMENTS + 20):
        result = await schema.execute(f"query Q{n} {{ __typename }}")
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert len(schema.documents) == MAX_DOCUMENTS
    long_text = "{ __typename }" + " " * MAX_TEXT
    assert (await schema.execute(long_text)).data == {"__typename": "Query"}
    assert len(schema.documents) == MAX_DOCUMENTS
    # Long texts, each within the limit of one: together they take the place of many.
    for n in range(MAX_TOTAL_TEXT // MAX_TEXT + 5):
        padded = f"query L{n} {{ __typename }}".ljust(MAX_TEXT)
        assert (await schema.execute(padded)).data == {"__typename": "Query"}
    assert schema.documents.total_text <= MAX_TOTAL_TEXT
    assert len(schema.documents) <= MAX_TOTAL_TEXT // MAX_TEXT
    for _ in range(2):
        result = await schema.execute("{ nope }")
        assert [e.message for e in result.errors or []] == [
            "Cannot query field 'nope' on type 'Query'. Did you mean 'node'?"
        ]


async def test_production_refuses_introspection_every_time() -> None:
    production = build_schema(Settings(env="production", secret_key=TEST_SECRET_KEY))
    development = build_schema(Settings())
    for _ in range(2):
        refused = await production.execute(INTROSPECTION)
        assert refused.data is None
        assert refused.errors is not None
        assert refused.errors[0].message.startswith("GraphQL introspection has been disabled")
        admitted = await development.execute(INTROSPECTION)
        assert admitted.data == {"__schema": {"queryType": {"name": "Query"}}}
