"""The chaos harness's own parts, fast: what it deletes from Redis and what its exact-once
check reports (so that a chaos run with no problems means something)."""

from __future__ import annotations

import uuid

import pytest

from bench.chaos import _once, forget_redis


def test_forgetting_the_deployments_redis_data_leaves_every_other_key_alone(
    redis_url: str,
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix, other = f"chaos{uuid.uuid4().hex[:8]}", f"other{uuid.uuid4().hex[:8]}"
    worker = f"rq:worker:{uuid.uuid4().hex}"
    ours = [
        f"{prefix}:sweep-slot:1",
        f"{prefix}:rate:login:127.0.0.1",
        f"rq:queue:{prefix}-rules",
        f"rq:job:{prefix}-fire-unpaid-expiry-x-1",
        f"rq:scheduled:{prefix}-rules",
        worker,
    ]
    theirs = [f"{other}:sweep-slot:1", f"rq:queue:{other}-rules", f"rq:job:{other}-mail-1"]
    try:
        for key in ours + theirs:
            client.set(key, "1")
        client.delete(worker)
        client.hset(worker, "queues", f"{prefix}-rules")
        client.sadd(f"rq:workers:{prefix}-rules", worker)
        ours.append(f"rq:workers:{prefix}-rules")

        assert forget_redis(redis_url, prefix) == len(ours)
        assert [k for k in ours if client.exists(k)] == []
        assert all(client.exists(k) for k in theirs)
    finally:
        client.delete(*ours, *theirs)
        client.close()


@pytest.mark.parametrize(
    ("listed", "found"),
    [
        (["a", "b", "c"], []),
        (["a", "b", "b", "c"], ["listed more than once: ['b']"]),
        (["a", "c"], ["missing: ['b']"]),
        (["a", "b", "c", "z"], ["not expected there: ['z']"]),
    ],
)
def test_the_exactly_once_check_reports_doubles_losses_and_strangers(
    listed: list[str], found: list[str]
) -> None:
    problems: list[str] = []
    _once("list", listed, {"a", "b", "c"}, problems)
    assert problems == [f"list: {f}" for f in found]
