"""Query limits checked before execution, in time linear in the document: fragment fan-out,
duplicated fields, depth and aliases, and the query's cost (page sizes multiply), refused with
`QUERY_TOO_COMPLEX`; and the cap on the size of an answer being built."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_named_type,
    is_leaf_type,
    parse,
)

from models.enums import Role
from resolvers.root import build_schema
from schema.query_cost import analyse
from schema.query_guard import query_limits, refusal
from settings import Settings
from tests.api import Api
from tests.factories import World

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema(Settings())._schema

# As a CLIENT this produced a 70 MB answer in 10-31 s before the cost limit.
NESTED_PAGES = (
    "{ invoices(first:100) { edges { node { client { invoices(first:100) { edges { node {"
    " client { invoices(first:100) { edges { cursor } } } } } } } } } } }"
)


def fan_out(levels: int) -> str:
    """Fragments each spreading the previous one twice: 2**levels copies of one field."""
    fragments = ["fragment F0 on Query { viewer { role } }"]
    fragments += [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"{{ ...F{levels} }} " + " ".join(fragments)


def every_field(type_: GraphQLObjectType, seen: frozenset[str]) -> str:
    """The selection of every field of `type_` and of the objects below it, except paged
    connections and fields with required arguments (each object type once on a path)."""
    selections = []
    for name, field in type_.fields.items():
        if "first" in field.args or any(
            isinstance(a.type, GraphQLNonNull) for a in field.args.values()
        ):
            continue
        named = get_named_type(field.type)
        if is_leaf_type(named):
            selections.append(name)
        elif isinstance(named, GraphQLObjectType) and named.name not in seen:
            selections.append(f"{name} {{ {every_field(named, seen | {named.name})} }}")
    return " ".join(selections)


FULL_PAGE = (
    "{ invoices(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { "
    + every_field(SCHEMA.type_map["Invoice"], frozenset({"Invoice"}))  # type: ignore[arg-type]
    + " } } } }"
)


def error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    (only,) = body["errors"]
    assert isinstance(only, dict)
    return only


async def test_fragment_fan_out_is_refused_after_linear_work(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    for levels in (20, 24, 39):
        document = fan_out(levels)
        analysis = analyse(parse(document), SCHEMA, query_limits(Settings()).cost_model)
        # Each fragment is walked once: a couple of selections per level, not 2**levels.
        assert analysis.work <= 2 * levels + 3
        assert analysis.fields == 2**levels * 2
        body = await api.post(document, token=token)
        refused = error(body)
        assert refused["extensions"] == {
            "code": "QUERY_TOO_COMPLEX",
            "limit": "fields",
            "maximum": 2000,
            "value": 2**levels * 2,
        }
    # A modest fan-out is an ordinary query.
    assert await api.data(fan_out(3), token=token) == {"viewer": {"role": "CLIENT"}}


async def test_unused_fragments_are_analysed_too(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    document = "{ __typename } " + fan_out(39).split(" ", 3)[3]
    assert error(await api.post(document, token=token))["extensions"]["limit"] == "fields"


async def test_fragment_cycles_are_left_to_standard_validation(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    body = await api.post(
        "{ ...A } fragment A on Query { viewer { role } ...B } fragment B on Query { ...A }",
        token=token,
    )
    assert "Cannot spread fragment 'A' within itself" in error(body)["message"]


async def test_duplicated_fields_are_refused_cheaply(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    copies = "{ " + " ".join(["viewer { user { id } }"] * 280) + " }"  # 6 KB, 1962 tokens
    assert error(await api.post(copies, token=token))["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "duplicates",
        "maximum": 20,
        "value": 280,
    }
    # Spread through fragments, the copies count the same.
    spread = "{ ...V } fragment V on Query { " + " ".join(["...W"] * 25) + " }"
    spread += " fragment W on Query { viewer { role } }"
    assert error(await api.post(spread, token=token))["extensions"]["limit"] == "duplicates"
    few = "{ " + " ".join(["viewer { role }"] * 20) + " }"
    assert await api.data(few, token=token) == {"viewer": {"role": "CLIENT"}}


async def test_nested_pages_are_refused_naming_the_limit_and_the_cost(
    api: Api, world: World
) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    refused = error(await api.post(NESTED_PAGES, token=token))
    assert refused["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "cost",
        "maximum": 60_000,
        "value": 2_040_401,
    }
    assert "cost is 2040401, more than the limit of 60000" in refused["message"]
    aliased = "{ " + " ".join(f"a{n}: " + NESTED_PAGES[2:-2] for n in range(4)) + " }"
    assert error(await api.post(aliased, token=token))["extensions"]["limit"] == "cost"


async def test_page_sizes_from_variables_count(api: Api, world: World) -> None:
    token = await world.token(world.admin, Role.ADMIN)
    query = (
        "query($n: Int) { invoices(first: $n) { edges { node { client {"
        " invoices(first: $n) { edges { node { id payments { id } } } } } } } } }"
    )
    assert error(await api.post(query, {"n": 100}, token=token))["extensions"]["limit"] == "cost"
    assert "errors" not in await api.post(query, {"n": 5}, token=token)


async def test_a_full_page_with_every_nested_field_and_the_readme_tour_pass(
    api: Api, world: World
) -> None:
    limits = query_limits(Settings())
    analysis = analyse(parse(FULL_PAGE), SCHEMA, limits.cost_model)
    assert refusal(analysis, limits) is None
    assert analysis.cost > 40_000  # the default limit is near it, not far above
    readme = (ROOT / "README.md").read_text()
    operations = 0
    for block in re.findall(r"```graphql\n(.*?)```", readme, re.S):
        document = parse(block)
        operations += sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        assert refusal(analyse(document, SCHEMA, limits.cost_model), limits) is None, block
    assert operations >= 10
    for _ in range(3):
        await world.invoice(paid=4_000)
    token = await world.token(world.admin, Role.ADMIN)
    data = await api.data(FULL_PAGE, token=token)
    assert data["invoices"]["totalCount"] >= 3
    assert data["invoices"]["edges"][0]["node"]["payments"][0]["amount"]["amount"] == 4_000


async def test_the_cost_limit_is_configurable(world: World, client_of: Any) -> None:
    assert Settings.from_env({"CAREBILL_MAX_QUERY_COST": "77"}).max_query_cost == 77
    env = {
        "CAREBILL_MAX_QUERY_FIELDS": "50",
        "CAREBILL_MAX_DUPLICATE_FIELDS": "3",
        "CAREBILL_NOMINAL_LIST_SIZE": "4",
        "CAREBILL_MAX_ANSWER_ITEMS": "9",
    }
    configured = Settings.from_env(env)
    assert (
        configured.max_query_fields,
        configured.max_duplicate_fields,
        configured.nominal_list_size,
        configured.max_answer_items,
    ) == (50, 3, 4, 9)
    token = await world.token(world.admin, Role.ADMIN)
    cheap = await client_of(max_query_cost=30)
    response = await cheap.post(
        "/graphql",
        json={"query": "{ invoices(first: 10) { edges { node { id number } } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert error(response.json())["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "cost",
        "maximum": 30,
        "value": 41,
    }


async def test_the_answer_being_built_is_capped(world: World, client_of: Any) -> None:
    for _ in range(4):
        await world.invoice(paid=1_000)
    token = await world.token(world.admin, Role.ADMIN)
    small = await client_of(max_answer_items=3)
    response = await small.post(
        "/graphql",
        json={"query": "{ invoices(first: 4) { edges { node { id } } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert body["data"] is None
    (refused,) = body["errors"]
    assert refused["path"] == ["invoices", "edges"]
    assert refused["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "answerItems",
        "maximum": 3,
        "value": 4,
    }
    fits = await small.post(
        "/graphql",
        json={"query": "{ invoices(first: 3) { edges { node { id } } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert len(fits.json()["data"]["invoices"]["edges"]) == 3
