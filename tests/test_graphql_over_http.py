"""GraphQL over HTTP as the specification words it: `application/graphql-response+json` with
its status codes, `application/json` as before, queries (never mutations) over GET, and the
specification's own conformance audits (npm `graphql-http`) run against a live server."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from models.enums import Role
from tests.api import Api
from tests.factories import World
from tests.js_packages import JS, node
from tests.live_server import LiveServer

GQL_JSON = "application/graphql-response+json"
VIEWER = "query Me($first: Int) { viewer { role } invoices(first: $first) { totalCount } }"


def headers(token: str, accept: str | None = None) -> dict[str, str]:
    values = {"Authorization": f"Bearer {token}"}
    if accept is not None:
        values["Accept"] = accept
    return values


async def test_queries_run_over_get(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    posted = await api.data(VIEWER, {"first": 5}, token)
    response = await api.http.get(
        "/graphql",
        params={"query": VIEWER, "variables": json.dumps({"first": 5}), "operationName": "Me"},
        headers=headers(token),
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"data": posted}
    # Caches key the answer on who asks and in which media type.
    assert {"accept", "authorization"} <= {
        v.strip().lower() for v in response.headers["vary"].split(",")
    }


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ("mutation { logout }", None),
        ("query Q { viewer { role } } mutation M { logout }", "M"),
    ],
)
async def test_mutations_over_get_are_405_and_do_not_happen(
    api: Api, world: World, query: str, operation_name: str | None
) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    params = {"query": query, **({"operationName": operation_name} if operation_name else {})}
    for accept in (None, GQL_JSON):
        response = await api.http.get("/graphql", params=params, headers=headers(token, accept))
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
    # The logout did not happen.
    assert await api.data("{ viewer { role } }", token=token) == {"viewer": {"role": "CLIENT"}}


REQUEST_ERRORS = [
    pytest.param("{ viewer { role ", {}, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param("{ viewer { nope } }", {}, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param(VIEWER, {"first": "ten"}, "BAD_USER_INPUT", id="variable-coercion"),
    pytest.param(
        "{ " + " ".join(f"a{n}: viewer {{ role }}" for n in range(40)) + " }",
        {},
        "QUERY_TOO_COMPLEX",
        id="aliases",
    ),
]


@pytest.mark.parametrize(("query", "variables", "code"), REQUEST_ERRORS)
async def test_request_errors_are_400_without_data_in_graphql_response_json(
    api: Api, world: World, query: str, variables: dict[str, Any], code: str
) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    body = {"query": query, "variables": variables}
    response = await api.http.post("/graphql", json=body, headers=headers(token, GQL_JSON))
    assert response.status_code == 400
    assert response.headers["content-type"] == f"{GQL_JSON}; charset=utf-8"
    answer = response.json()
    assert "data" not in answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]

    # application/json, as before the specification: 200, `data: null`, the same errors.
    legacy = await api.http.post("/graphql", json=body, headers=headers(token, "application/json"))
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json; charset=utf-8"
    assert legacy.json() == {"data": None, "errors": answer["errors"]}


async def test_executed_operations_are_200_in_graphql_response_json(api: Api, world: World) -> None:
    token = await world.token(world.c1, Role.CLIENT)
    ok = await api.http.post("/graphql", json={"query": VIEWER}, headers=headers(token, GQL_JSON))
    assert (ok.status_code, ok.headers["content-type"]) == (200, f"{GQL_JSON}; charset=utf-8")
    assert ok.json()["data"]["viewer"] == {"role": "CLIENT"}
    # A field error was executed: 200, with `data` (null here: the field is non-null).
    denied = await api.http.post(
        "/graphql",
        json={"query": '{ billingReport(from: "2025-01-01", to: "2025-01-31") { invoicedCount } }'},
        headers=headers(token, GQL_JSON),
    )
    assert denied.status_code == 200
    assert denied.json()["data"] is None
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Not logged in is an executed operation too.
    anonymous = await api.http.post(
        "/graphql", json={"query": "{ practice { name } }"}, headers={"Accept": GQL_JSON}
    )
    assert anonymous.status_code == 200
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GQL_JSON, GQL_JSON),
        (f"{GQL_JSON}, application/json;q=0.9", GQL_JSON),
        (f"application/json, {GQL_JSON};q=0.5", "application/json"),
        (f"text/html;q=0.9, {GQL_JSON}", GQL_JSON),
    ],
)
async def test_the_media_type_is_the_clients_choice(
    api: Api, accept: str | None, media_type: str
) -> None:
    request_headers = {"Accept": accept} if accept else {}
    response = await api.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers=request_headers
    )
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"


def test_the_specifications_audits_pass(live_server: LiveServer) -> None:
    """Every MUST and SHOULD of graphql-http's server audits, and the MAYs we implement."""
    run = subprocess.run(
        [node(), str(JS / "http-audits.mjs"), f"{live_server.http_url}/graphql"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert len(results) >= 50
    failed = [r for r in results if r["status"] != "ok"]
    assert failed == []
