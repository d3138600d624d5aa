"""A third-party client as the judge: schemathesis reads each sandbox's OpenAPI document, authenticates as the
document says, and sends generated requests (valid and invalid) in-process over ASGI. No 500, no status the
document does not list, no answer that contradicts its schema, no valid request refused, no invalid one accepted,
no request without credentials let through."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from ordersync.sandbox import load_sandbox
from ordersync.sandbox.app import Sandbox, SandboxOptions
from tests.registry import API_NAMES, for_api
from tests.support import ANCHOR

# per operation: about 2 s per API on this machine; ORDERSYNC_SCHEMATHESIS_EXAMPLES=1000 for an audit-sized run
EXAMPLES = int(os.environ.get("ORDERSYNC_SCHEMATHESIS_EXAMPLES", "25"))


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def credentials(sandbox: Sandbox, app: Any) -> dict[str, Any]:
    """What the vendor's documentation tells a client to send, per security scheme."""
    key = sandbox.options.api_key
    if sandbox.name == "prio":
        token = asyncio.run(_token(app, basic(sandbox.client_id, sandbox.client_secret)))
        return {"headers": {"Authorization": f"Bearer {token}"},
                "token_headers": {"Authorization": basic(sandbox.client_id, sandbox.client_secret)}}
    return for_api({"frontcore": {"headers": {"X-API-Key": key}}, "eguma": {"query": {"apikey": key}},
                    "firespring": {"headers": {"Authorization": basic(key)}}}, sandbox.name, "credentials")


async def _token(app: Any, authorization: str) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as client:
        answer = await client.post("/v3.4/distributor/oauth2/token", headers={"Authorization": authorization},
                                   json={"grant_type": "client_credentials"})
    return str(answer.json()["access_token"])


@pytest.mark.parametrize("api", API_NAMES)
def test_schemathesis_finds_nothing(api: str) -> None:
    sandbox = load_sandbox(api, SandboxOptions(orders=60, anchor=ANCHOR, rate_limit=False))
    app = sandbox.app()
    auth = credentials(sandbox, app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    @schema.auth()
    class DocumentedAuth:
        def get(self, case: Any, context: Any) -> dict[str, Any]:
            return auth

        def set(self, case: Any, data: dict[str, Any], context: Any) -> None:
            headers = data["token_headers"] if case.path.endswith("/oauth2/token") else data.get("headers", {})
            case.headers = {**(case.headers or {}), **headers}
            if data.get("query"):
                case.query = {**(case.query or {}), **data["query"]}

    excluded = []
    if api == "eguma":
        # e-guma documents 400 ("missing parameter") for a request without its apikey, not 401: see test_sandbox.py.
        excluded.append(checks.ignored_auth)
    if api == "prio":
        # order_search_query is refused with cache=false: a dependency between parameters that OpenAPI cannot state.
        excluded.append(checks.positive_data_acceptance)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            try:
                case.call_and_validate(excluded_checks=excluded)
            except AssertionError as failure:  # schemathesis's FailureGroup is one; collect, report all at once
                failures.append(f"{case.operation.label}: {str(failure)[:2000]}")

        run()
    assert not failures, "\n\n".join(failures[:5])
