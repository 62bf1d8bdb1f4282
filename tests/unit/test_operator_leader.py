"""The Lease rules of the operator's leader election (pure part of leader.py)."""

from __future__ import annotations

import datetime as dt

from sailvl_operator.leader import Election, claim

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
ME = Election(namespace="ns", name="lease", identity="a", duration_s=15)


def _at(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_missing_lease_is_taken() -> None:
    spec = claim(None, ME, NOW)
    assert spec is not None and spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == _at(0)


def test_a_live_lease_of_another_holder_is_left_alone() -> None:
    held = {"holderIdentity": "b", "renewTime": _at(5), "leaseDurationSeconds": 15}
    assert claim(held, ME, NOW) is None


def test_an_expired_lease_is_taken_over_and_counted() -> None:
    held = {
        "holderIdentity": "b",
        "renewTime": _at(16),
        "leaseDurationSeconds": 15,
        "leaseTransitions": 3,
        "acquireTime": _at(100),
    }
    spec = claim(held, ME, NOW)
    assert spec is not None and spec["holderIdentity"] == "a"
    assert spec["leaseTransitions"] == 4 and spec["acquireTime"] == _at(0)


def test_the_holder_renews_without_a_transition() -> None:
    held = {
        "holderIdentity": "a",
        "renewTime": _at(5),
        "acquireTime": _at(60),
        "leaseDurationSeconds": 15,
        "leaseTransitions": 2,
    }
    spec = claim(held, ME, NOW)
    assert spec is not None and spec["renewTime"] == _at(0)
    assert spec["acquireTime"] == _at(60) and spec["leaseTransitions"] == 2


def test_the_holders_own_duration_decides_expiry() -> None:
    held = {"holderIdentity": "b", "renewTime": _at(20), "leaseDurationSeconds": 30}
    assert claim(held, ME, NOW) is None


def test_off_unless_asked_for() -> None:
    assert Election.from_env({}) is None
    e = Election.from_env(
        {"SAILVL_LEADER_ELECTION": "1", "POD_NAME": "op-1", "SAILVL_OPERATOR_NAMESPACE": "sys"}
    )
    assert e is not None and (e.identity, e.namespace) == ("op-1", "sys")
