"""The platform through HTTP: envelope, request ids, read-your-writes, idempotency, probes."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter

from fastapi.testclient import TestClient

from api.deps import request_fingerprint_body
from commands.idempotency import fingerprint
from shopledger.logging import JsonFormatter
from tests.e2e.conftest import ClientFactory, container_of
from tests.support.ledger_api import OpenBody


def open_ledger(client: TestClient, name: str = "cash", **headers: str):
    return client.post("/test/ledgers", json={"name": name}, headers=headers)


# --- commands and read-your-writes ------------------------------------------------------------


def test_a_command_answers_with_its_event_position_and_a_query_can_wait_for_it(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    created = open_ledger(client)
    assert created.status_code == 201
    ledger_id = created.json()["ledgerId"]
    credited = client.post(f"/test/ledgers/{ledger_id}/credits", json={"amount": 5})
    position = credited.headers["X-Event-Position"]
    assert int(position) == int(created.headers["X-Event-Position"]) + 1
    read = client.get(f"/test/ledgers/{ledger_id}", headers={"X-Min-Position": position})
    assert read.status_code == 200
    assert read.json()["balance"] == 5


def test_a_query_answers_503_with_retry_after_when_projections_lag(
    make_client: ClientFactory,
) -> None:
    client = make_client(background=False, min_position_wait="PT0.3S")
    created = open_ledger(client)
    started = time.monotonic()
    read = client.get(
        f"/test/ledgers/{created.json()['ledgerId']}",
        headers={"X-Min-Position": created.headers["X-Event-Position"]},
    )
    assert read.status_code == 503
    assert read.headers["Retry-After"].isdigit()
    assert read.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert 0.25 <= time.monotonic() - started < 2.0
    container_of(client).catch_up()
    again = client.get(
        f"/test/ledgers/{created.json()['ledgerId']}",
        headers={"X-Min-Position": created.headers["X-Event-Position"]},
    )
    assert again.status_code == 200


def test_a_malformed_min_position_is_a_validation_error(make_client: ClientFactory) -> None:
    client = make_client()
    read = client.get(
        "/test/ledgers/00000000-0000-0000-0000-000000000000", headers={"X-Min-Position": "-3"}
    )
    assert read.status_code == 400 and read.json()["error"]["code"] == "VALIDATION_ERROR"


# --- the error envelope -------------------------------------------------------------------------


def test_unknown_fields_are_refused_with_400_naming_the_field_without_echoing_values(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    response = client.post("/test/ledgers", json={"name": "x", "password": "hunter2"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [e["field"] for e in error["details"]["errors"]] == ["password"]
    assert "hunter2" not in response.text
    assert container_of(client).head_position() == 0  # no partial write


def test_malformed_json_and_wrong_types_are_400(make_client: ClientFactory) -> None:
    client = make_client()
    bad_json = client.post(
        "/test/ledgers", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "VALIDATION_ERROR"
    wrong_type = client.post("/test/ledgers", json={"name": ["x"]})
    assert wrong_type.status_code == 400


def test_domain_errors_map_to_status_and_code(make_client: ClientFactory) -> None:
    client = make_client()
    missing = client.post(
        "/test/ledgers/00000000-0000-0000-0000-000000000000/credits", json={"amount": 1}
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    ledger_id = open_ledger(client).json()["ledgerId"]
    refused = client.post(f"/test/ledgers/{ledger_id}/debits", json={"amount": 9})
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "CONFLICT",
        "message": "not enough funds",
        "details": {"balance": 0},
    }


def test_an_unexpected_error_is_a_500_envelope_that_reveals_nothing(
    tmp_path, make_client: ClientFactory
) -> None:
    client = make_client()
    client_no_raise = TestClient(client.app, raise_server_exceptions=False)
    response = client_no_raise.get("/test/ledgers/boom/crash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "secret" not in response.text


def test_unknown_paths_and_methods_use_the_envelope(make_client: ClientFactory) -> None:
    client = make_client()
    assert client.get("/nowhere").json()["error"]["code"] == "NOT_FOUND"
    response = client.delete("/test/ledgers")
    assert response.status_code == 405 and response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


# --- request ids and logs -----------------------------------------------------------------------


def test_request_ids_are_echoed_logged_and_recorded_as_the_events_correlation_id(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("shopledger.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        response = open_ledger(client, **{"X-Request-ID": "req-abc.123"})
        generated = client.get("/healthz").headers["X-Request-ID"]
    finally:
        access.removeHandler(handler)
    assert response.headers["X-Request-ID"] == "req-abc.123"
    assert len(generated) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {
        "requestId": "req-abc.123",
        "method": "POST",
        "path": "/test/ledgers",
        "status": 201,
    }.items() <= lines[0].items()
    assert lines[1]["requestId"] == generated
    c = container_of(client)
    note = c.app.recorder.select_notifications(start=1, limit=1)[0]
    assert c.app.meta_mapper.decode_state(note)["__meta__"]["correlationId"] == "req-abc.123"


def test_an_unsafe_request_id_is_replaced(make_client: ClientFactory) -> None:
    client = make_client()
    response = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert response.headers["X-Request-ID"] != "bad id\nwith newline"


def test_the_json_formatter_redacts_secret_fields() -> None:
    record = logging.makeLogRecord({"msg": "login", "password": "hunter2", "refresh_token": "abc"})
    line = json.loads(JsonFormatter().format(record))
    assert line["password"] == "[redacted]" and line["refresh_token"] == "[redacted]"


# --- idempotency --------------------------------------------------------------------------------


def test_a_repeated_request_with_the_same_key_replays_the_original_answer_without_new_events(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    first = open_ledger(client, **{"Idempotency-Key": "k-1"})
    head = container_of(client).head_position()
    again = open_ledger(client, **{"Idempotency-Key": "k-1"})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert container_of(client).head_position() == head
    note = container_of(client).app.recorder.select_notifications(start=1, limit=1)[0]
    assert (
        container_of(client).app.meta_mapper.decode_state(note)["__meta__"]["idempotencyKey"]
        == "k-1"
    )


def test_the_same_key_with_a_different_body_is_an_idempotency_conflict(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    open_ledger(client, "a", **{"Idempotency-Key": "k-2"})
    other = open_ledger(client, "b", **{"Idempotency-Key": "k-2"})
    assert other.status_code == 422 and other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert container_of(client).head_position() == 1


def test_a_key_still_in_flight_answers_409(make_client: ClientFactory) -> None:
    client = make_client()
    fp = fingerprint("POST", "/test/ledgers", request_fingerprint_body(OpenBody(name="cash")))
    container_of(client).idempotency.claim("anonymous", "k-3", fp)
    response = open_ledger(client, **{"Idempotency-Key": "k-3"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "CONFLICT"


def test_an_abandoned_claim_is_taken_over_after_its_lease(make_client: ClientFactory) -> None:
    client = make_client(idempotency_lease="PT0.2S")
    container_of(client).idempotency.claim("anonymous", "k-4", "x" * 64)
    time.sleep(0.3)
    assert open_ledger(client, **{"Idempotency-Key": "k-4"}).status_code == 201


def test_a_refused_request_releases_its_key_for_a_retry(make_client: ClientFactory) -> None:
    client = make_client()
    ledger_id = open_ledger(client).json()["ledgerId"]
    key = {"Idempotency-Key": "k-5"}
    assert (
        client.post(
            f"/test/ledgers/{ledger_id}/debits", json={"amount": 5}, headers=key
        ).status_code
        == 409
    )
    client.post(f"/test/ledgers/{ledger_id}/credits", json={"amount": 10})
    retried = client.post(f"/test/ledgers/{ledger_id}/debits", json={"amount": 5}, headers=key)
    assert retried.status_code == 200 and retried.json() == {"balance": 5}


def test_keys_are_scoped_to_the_caller(make_client: ClientFactory) -> None:
    client = make_client()
    alice = open_ledger(client, "a", **{"Idempotency-Key": "same", "X-Test-User": "alice"})
    bob = open_ledger(client, "b", **{"Idempotency-Key": "same", "X-Test-User": "bob"})
    assert alice.status_code == bob.status_code == 201
    assert alice.json()["ledgerId"] != bob.json()["ledgerId"]


def test_a_malformed_key_is_refused(make_client: ClientFactory) -> None:
    client = make_client()
    response = open_ledger(client, **{"Idempotency-Key": "x" * 300})
    assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_racing_duplicates_create_exactly_one_ledger(
    make_client: ClientFactory, database_url: str
) -> None:
    client = make_client(database_url)
    statuses: list[int] = []
    bodies: list[dict] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        response = open_ledger(client, "race", **{"Idempotency-Key": "race-1"})
        statuses.append(response.status_code)
        if response.status_code == 201:
            bodies.append(response.json())

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert len({b["ledgerId"] for b in bodies}) == 1
    assert container_of(client).head_position() == 1
    assert Counter(statuses)[201] + Counter(statuses)[409] == 8


# --- probes and docs ----------------------------------------------------------------------------


def test_health_ready_and_docs(make_client: ClientFactory) -> None:
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == {"ok": True}
    assert client.get("/docs").status_code == 200
    assert "/readyz" in client.get("/openapi.json").json()["paths"]


def test_readiness_fails_when_projections_lag_too_far(make_client: ClientFactory) -> None:
    client = make_client(background=False, ready_max_lag=0)
    open_ledger(client)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["projections"]["lag"]["test_ledgers"] == 1


def test_readiness_fails_when_redis_is_configured_but_down(make_client: ClientFactory) -> None:
    client = make_client(background=False, redis_url="redis://127.0.0.1:1/0")
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"]["ok"] is False
