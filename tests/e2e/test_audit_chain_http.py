"""The audit chain over HTTP (as an admin): signing and listing checkpoints, and the
background verification job, passing and then failing after tampering."""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import ClientFactory
from tests.support.accounts import admin, container_of, login, register, verified_user


def poll(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


def test_admin_signs_and_lists_checkpoints_verifiable_with_the_jwks_and_others_may_not(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    boss = admin(client)
    first = client.post("/api/audit/checkpoints", headers=boss.auth)
    assert first.status_code == 201, first.text
    signed = first.json()["checkpoint"]
    assert first.headers["X-Event-Position"] == str(signed["position"])
    again = client.post("/api/audit/checkpoints", headers=boss.auth)
    assert again.status_code == 200 and again.json() == {"created": False, "checkpoint": None}
    verified_user(client)  # the head moves
    keyed = {**boss.auth, "Idempotency-Key": "checkpoint-2"}
    second = client.post("/api/audit/checkpoints", headers=keyed).json()["checkpoint"]
    replay = client.post("/api/audit/checkpoints", headers=keyed)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["checkpoint"] == second
    assert second["signedPosition"] > signed["position"]

    page = client.get("/api/audit/checkpoints?limit=1", headers=boss.auth)
    assert page.status_code == 200, page.text
    assert page.json() == {"checkpoints": [signed], "next": signed["position"]}
    rest = client.get(f"/api/audit/checkpoints?after={signed['position']}", headers=boss.auth)
    assert rest.json() == {"checkpoints": [second], "next": None}

    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    header = jwt.get_unverified_header(signed["jws"])
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(signed["jws"], key.key, algorithms=["RS256"])
    assert (claims["position"], claims["link"]) == (signed["signedPosition"], signed["link"])

    buyer = verified_user(client)  # admins and auditors only
    for method, path in (
        ("get", "/api/audit/checkpoints"),
        ("post", "/api/audit/checkpoints"),
        ("get", "/api/audit/verify"),
        ("get", "/api/audit/verify/abc"),
    ):
        assert getattr(client, method)(path).status_code == 401
        r = getattr(client, method)(path, headers=buyer.auth)
        assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN"


def test_a_verification_job_passes_then_fails_at_the_tampered_position(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    boss = admin(client)
    client.post("/api/audit/checkpoints", headers=boss.auth)
    started = client.get("/api/audit/verify", headers=boss.auth)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "running", "passed")
    assert started.headers["Location"] == job["statusUrl"] == f"/api/audit/verify/{job['jobId']}"
    done = poll(client, job["statusUrl"], boss.auth)
    assert done["status"] == "passed", done
    assert done["checkpoints"] == 1 and done["checked"] == done["position"] > 0

    container = container_of(client)
    events: Any = container.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    with container.engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == 2).values(originator_version=99))
    failed = poll(
        client,
        client.get("/api/audit/verify?from=1", headers=boss.auth).json()["statusUrl"],
        boss.auth,
    )
    assert (failed["status"], failed["firstBadPosition"], failed["problem"]) == (
        "failed",
        2,
        "changed",
    )
    later = poll(
        client,
        client.get("/api/audit/verify?from=3", headers=boss.auth).json()["statusUrl"],
        boss.auth,
    )
    assert later["status"] == "passed" and later["from"] == 3

    user = register(client)  # an auditor reads checkpoints and verifies, and signs nothing
    r = client.put(f"/api/users/{user.user_id}", json={"role": "auditor"}, headers=boss.auth)
    assert r.status_code == 200, r.text
    auditor = login(client, user)
    assert client.get("/api/audit/checkpoints", headers=auditor.auth).status_code == 200
    by_auditor = client.get("/api/audit/verify?from=3", headers=auditor.auth)
    assert by_auditor.status_code == 202, by_auditor.text
    assert poll(client, by_auditor.json()["statusUrl"], auditor.auth)["status"] == "passed"
    refused = client.post("/api/audit/checkpoints", headers=auditor.auth)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"

    r = client.get("/api/audit/verify?from=9&to=3", headers=boss.auth)  # bad requests
    assert r.status_code == 400 and r.json()["error"]["code"] == "VALIDATION_ERROR"
    r = client.get("/api/audit/verify?from=abc", headers=boss.auth)
    assert r.status_code in (400, 422) and "error" in r.json()
    r = client.get("/api/audit/verify/nope", headers=boss.auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"


def test_the_embedded_timed_rule_signs_the_head_once_per_move(make_client: ClientFactory) -> None:
    client = make_client(audit_checkpoint_interval="PT0.2S")
    boss = admin(client)
    deadline = time.monotonic() + 15
    listed: list[Any] = []
    while time.monotonic() < deadline and not listed:
        time.sleep(0.2)
        listed = client.get("/api/audit/checkpoints", headers=boss.auth).json()["checkpoints"]
    assert listed, "no checkpoint was signed by the timed rule"
    time.sleep(0.6)  # (the admin's login may have moved the head once more)
    settled = client.get("/api/audit/checkpoints", headers=boss.auth).json()["checkpoints"]
    time.sleep(0.6)  # several intervals with nothing appended but checkpoints: no new ones
    later = client.get("/api/audit/checkpoints", headers=boss.auth).json()["checkpoints"]
    assert later == settled and len(settled) <= 2


def test_in_scaled_mode_the_worker_runs_verification_and_checkpoint_jobs(
    make_client: ClientFactory, redis_url: str
) -> None:
    from rq import SimpleWorker

    from audit.jobs import CheckpointTicker
    from workers import jobs

    client = make_client(redis_url=redis_url, queue_prefix=f"t{uuid4().hex[:10]}")
    container = container_of(client)
    assert container.dispatcher is not None
    boss = admin(client)
    job = client.get("/api/audit/verify", headers=boss.auth).json()
    assert job["status"] == "queued" and job["jobId"].startswith(container.dispatcher.prefix)
    assert CheckpointTicker(container).tick()
    jobs.use(container)
    try:
        worker = SimpleWorker(
            [container.dispatcher.audit_queue], connection=container.dispatcher.redis
        )
        worker.work(burst=True)
    finally:
        jobs.use(None)
    done = client.get(job["statusUrl"], headers=boss.auth).json()
    assert done["status"] == "passed" and done["checked"] == done["to"] > 0, done
    listed = client.get("/api/audit/checkpoints", headers=boss.auth).json()["checkpoints"]
    assert len(listed) == 1
    container.dispatcher.redis.delete(
        *container.dispatcher.redis.keys(f"{container.dispatcher.prefix}*")
    )
