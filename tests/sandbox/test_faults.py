"""Fault injection, as a client sees it over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from ordersync.sandbox.faults import FaultSpec
from tests.support import running

HEADERS = {"X-API-Key": "sandbox-key"}


@pytest.mark.parametrize(("spec", "message"), [
    ("429", "needs a value"),
    ("500:often", "not a number"),
    ("500:1.5", "between 0 and 1"),
    ("explode:0.1", "unknown fault 'explode'"),
])
def test_bad_specs_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(spec)


def test_status_faults_carry_retry_after_and_spare_the_control_endpoints() -> None:
    with running("frontcore", orders=10, faults="429:1,retry_after:7") as fc:
        response = httpx.get(f"{fc.url}/v2/orders", headers=HEADERS)
        assert response.status_code == 429 and response.headers["retry-after"] == "7"
        assert httpx.get(f"{fc.url}/_sandbox/stats").status_code == 200
        assert httpx.get(f"{fc.url}/openapi.json").status_code == 200


@pytest.mark.parametrize(("fault", "received"), [("reset:1", "received 0 bytes"), ("truncate:1", "expected")])
def test_cut_connections_break_the_answer(fault: str, received: str) -> None:
    with running("frontcore", orders=10, faults=fault) as fc, pytest.raises(httpx.RemoteProtocolError) as err:
        httpx.get(f"{fc.url}/v2/orders", headers=HEADERS)
    assert received in str(err.value)


def test_rate_limit_per_credential() -> None:
    with running("frontcore", orders=10, faults="rate:3") as fc:
        statuses = [httpx.get(f"{fc.url}/v2/orders", headers=HEADERS).status_code for _ in range(6)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
        other = httpx.get(f"{fc.url}/v2/orders", headers={"X-API-Key": "someone-else"})
        assert other.status_code == 401  # another credential has its own budget (and here a wrong key)


def test_drift_changes_the_data_between_pages() -> None:
    with running("frontcore", orders=30, faults="drift:1,seed:1") as fc:
        before = httpx.get(f"{fc.url}/_sandbox/stats").json()["orders"]
        for _ in range(6):
            httpx.get(f"{fc.url}/v2/orders", headers=HEADERS)
        after = httpx.get(f"{fc.url}/_sandbox/stats").json()["orders"]
        assert after > before


def test_same_seed_same_faults() -> None:
    def pattern() -> list[int]:
        with running("frontcore", orders=5, faults="500:0.5,seed:11") as fc:
            return [httpx.get(f"{fc.url}/v2/orders", headers=HEADERS).status_code for _ in range(12)]

    first = pattern()
    assert first == pattern() and 500 in first and 200 in first


def test_a_control_request_with_a_bad_body_is_a_400_not_a_500() -> None:
    with running("frontcore", orders=5) as fc:
        for path, body in (("clock", {"now": "yesterday"}), ("reset", {"orders": "many"})):
            response = httpx.post(f"{fc.url}/_sandbox/{path}", json=body)
            assert response.status_code == 400 and "bad control request" in response.json()["error"]
        assert httpx.post(f"{fc.url}/_sandbox/orders", content=b"{not json").status_code == 400
