"""Every error a client can meet, faults included, is written as that vendor writes its errors (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.registry import for_api
from tests.sandbox.inprocess import LIST_PATHS, InProcess, auth


def shape(api: str, answer: Any) -> bool:
    """Whether ``answer`` is an error body of ``api``'s documented shape, with the matching content type."""
    kind = answer.headers["content-type"]
    if api == "eguma":
        return kind.startswith("text/plain") and bool(answer.text) and not answer.text.startswith("{")
    if not kind.startswith("application/json"):
        return False
    body = answer.json()
    if api == "frontcore":
        return set(body) == {"error"} and isinstance(body["error"], str)
    if api == "firespring":
        return [set(e) for e in body["errors"]] == [{"code", "source", "detail"}]
    if api != "prio":
        pytest.fail(f"shape() does not know how the API '{api}' writes an error: add it here")
    return set(body) == {"error", "error_description", "errors"} and body["errors"] == [body["error_description"]]


@pytest.mark.parametrize("api", list(LIST_PATHS))
@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_injected_faults_speak_the_vendors_error_language(api: str, status: int) -> None:
    sandbox = InProcess(api, faults=f"{status}:1,retry_after:3", rate_limit=False)
    credentials = auth(sandbox) if api != "prio" else {}  # Prio's token endpoint is faulted too
    answer = sandbox.get(LIST_PATHS[api], **credentials)
    assert answer.status_code == status and shape(api, answer), answer.text
    assert (answer.headers.get("retry-after") == "3") == (status in (429, 503))


@pytest.mark.parametrize("api", list(LIST_PATHS))
def test_rate_limit_counts_per_credential_whatever_the_query(api: str) -> None:
    """e-guma's key is in the query string: different queries of one key share one budget."""
    sandbox = InProcess(api, faults="rate:2", rate_limit=False)
    credentials = auth(sandbox)
    name = for_api({"eguma": "created_at_after", "firespring": "count", "frontcore": "limit", "prio": "items_per_page"},
                   api, "query parameter")
    requests = []
    for n in range(1, 5):
        value = f"2025-01-0{n}T00:00:00" if api == "eguma" else str(n)
        params = {**credentials.get("params", {}), name: value}
        requests.append((LIST_PATHS[api], {"headers": credentials.get("headers"), "params": params}))
    statuses = sorted(answer.status_code for answer in sandbox.burst(requests))
    allowed = 1 if api == "prio" else 2  # Prio: the token request was the same client's
    assert statuses == [200] * allowed + [429] * (4 - allowed)
    other = sandbox.get(LIST_PATHS[api], params={"apikey": "another-key"}, headers={
        "X-API-Key": "another-key", "Authorization": "Basic YW5vdGhlci1rZXk6"})
    assert other.status_code in (400, 401)  # its own budget: refused as a wrong key, not as over the limit


def test_frontcore_enforces_its_documented_rate_limit_by_default() -> None:
    limited = InProcess("frontcore")
    answers = limited.burst([("/v2/orders", auth(limited))] * 7)
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 2
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1" and shape("frontcore", refused)
    lifted = InProcess("frontcore", rate_limit=False)
    assert {lifted.get("/v2/orders", **auth(lifted)).status_code for _ in range(12)} == {200}


def test_firespring_answers_403_for_a_website_the_key_may_not_read() -> None:
    fs = InProcess("firespring", extra={"limited_keys": "branch-key:19"})
    refused = fs.get("/websites/1/orders", **auth(fs))
    assert refused.status_code == 403 and shape("firespring", refused)
    assert refused.json()["errors"][0]["source"] == "website_id"
    branch = {"headers": {"Authorization": "Basic " + __import__("base64").b64encode(b"branch-key:").decode()}}
    assert fs.get("/websites/19/orders", **branch).status_code == 200
    assert fs.get("/websites/4/orders", **branch).status_code == 403
    assert fs.get("/websites/5/orders", **auth(fs)).status_code == 404  # no such website at all


@pytest.mark.parametrize(("api", "path", "params"), [
    ("frontcore", "/v2/orders", {"page": str(2**64)}),
    ("frontcore", "/v2/orders", {"since_id": str(2**63)}),
    ("frontcore", "/v2/orders", {"course_id": "9" * 30}),
    ("frontcore", "/v2/orders", {"created_at_min": "0001-01-01"}),
    ("frontcore", "/v2/orders", {"updated_at_max": "2024-02-30"}),
    ("frontcore", "/v2/customers", {"since_id": str(2**64)}),
    ("frontcore", f"/v2/orders/{2**64}", {}),
    ("firespring", "/websites/4/orders", {"page": str(2**63)}),
    ("firespring", f"/websites/4/orders/{2**64}", {}),
    ("prio", "/v3.4/distributor/orders", {"page": str(2**63)}),
    ("prio", "/v3.4/distributor/orders", {"start_index": str(2**64)}),
    ("prio", "/v3.4/distributor/orders", {"reseller_id": str(2**64)}),
    ("prio", "/v3.4/distributor/orders", {"items_per_page": str(2**64)}),
    ("prio", "/v3.4/distributor/orders", {"order_created_from": "2024-02-30T00:00:00+00:00"}),
    ("prio", "/v3.4/distributor/orders", {"order_created_from": "2024-02-01T25:00:00+00:00"}),
    ("prio", "/v3.4/distributor/orders", {"order_modified": "2024-02-01T00:00:00+99:99"}),
    ("prio", "/v3.4/distributor/orders", {"order_created_to": "0001-01-01T00:00:00+01:00"}),
    ("eguma", "/v1/vouchers/orders.json", {"created_at_after": "2024-02-30T00:00:00"}),
])
def test_out_of_range_input_is_the_vendors_400_or_422(api: str, path: str, params: dict[str, str]) -> None:
    sandbox = InProcess(api, rate_limit=False)
    credentials = auth(sandbox)
    answer = sandbox.get(path, headers=credentials.get("headers"), params={**credentials.get("params", {}), **params})
    assert answer.status_code == (422 if api == "firespring" else 400), answer.text
    assert shape(api, answer)


@pytest.mark.parametrize(("path", "body"), [
    ("reset", [1, 2]), ("clock", ["now"]), ("clock", {"advance_seconds": 1e20}), ("clock", {"advance_seconds": "x"}),
    ("clock", {"now": 5}), ("reset", {"orders": 2**70}), ("orders", [{}]), ("customers", "x"),
])
def test_control_endpoints_refuse_unusable_bodies_with_400(path: str, body: Any) -> None:
    sandbox = InProcess("frontcore", rate_limit=False)
    answer = sandbox.post(f"/_sandbox/{path}", json=body)
    assert answer.status_code == 400 and "bad control request" in answer.json()["error"]


def test_a_huge_id_in_a_control_path_is_400() -> None:
    sandbox = InProcess("frontcore", rate_limit=False)
    assert sandbox.request("PATCH", f"/_sandbox/orders/{2**64}", json={}).status_code == 400


@pytest.mark.parametrize("api", list(LIST_PATHS))
def test_unknown_paths_and_methods_are_vendor_errors_too(api: str) -> None:
    sandbox = InProcess(api, rate_limit=False)
    missing = sandbox.get(LIST_PATHS[api] + "/nothing/here/at/all")
    assert missing.status_code == 404 and shape(api, missing)
    wrong_method = sandbox.request("DELETE", LIST_PATHS[api])
    assert wrong_method.status_code == 405 and shape(api, wrong_method) and "allow" in wrong_method.headers
