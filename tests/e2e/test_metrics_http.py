"""GET /metrics over HTTP: the Prometheus text format, parsed as Prometheus would parse it."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ClientFactory
from tests.support.accounts import container_of, register, wait

TOKEN = "s3cret-metrics-token-0123"


def scrape(client: TestClient, **headers: str) -> dict[str, list[Any]]:
    """Samples by name, as Prometheus's parser reads the answer."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float | None:
    found = [s.value for s in samples.get(name, []) if s.labels.items() >= labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def test_metrics_count_requests_by_route_template_and_report_projection_lag(
    make_client: ClientFactory,
) -> None:
    client = make_client(background=False)  # no projector: the read models stay behind
    missing = uuid.uuid4()
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/api/catalog/products/{missing}").status_code == 404
    assert client.get(f"/no/such/{missing}").status_code == 404
    assert client.delete("/healthz").status_code == 405
    assert client.request("BREW", "/healthz").status_code == 405
    assert client.request("PROPFIND", "/healthz").status_code == 405
    register(client)
    register(client)
    container = container_of(client)
    head = container.head_position()
    assert head > 0
    samples = scrape(client)

    requests = "shopledger_http_requests_total"
    assert value(samples, requests, method="GET", route="/healthz", status="200") == 2
    product = "/api/catalog/products/{product_id}"
    assert value(samples, requests, method="GET", route=product, status="404") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="DELETE", route="/healthz", status="405") == 1
    # Methods a client makes up are one series, not one each.
    assert value(samples, requests, method="OTHER", route="/healthz", status="405") == 2
    assert value(samples, requests, route="/api/auth/register", status="201") == 2
    # Never the raw path: an id in a label would make one series per object.
    assert not any(str(missing) in s.labels.get("route", "") for s in samples[requests])
    latency = "shopledger_http_request_duration_seconds"
    count = value(samples, latency + "_count", method="GET", route="/healthz", status="200")
    assert count == 2
    total = value(samples, latency + "_sum", method="GET", route="/healthz", status="200")
    assert total is not None and total > 0
    inf = value(samples, latency + "_bucket", route="/healthz", status="200", le="+Inf")
    assert inf == 2
    assert value(samples, "shopledger_metrics_source_up", source="database") == 1

    assert value(samples, "shopledger_event_store_head_position") == head
    for name in container.projections:
        assert value(samples, "shopledger_projection_lag_events", projection=name) == head
        assert value(samples, "shopledger_projection_position", projection=name) == 0
    wait(client)  # the projections catch up
    samples = scrape(client)
    for name in container.projections:
        assert value(samples, "shopledger_projection_lag_events", projection=name) == 0
        assert value(samples, "shopledger_projection_position", projection=name) == head
    # Two verification mails wait in the outbox (no mail thread runs here).
    assert value(samples, "shopledger_outbox_backlog") == 2
    assert value(samples, requests, method="GET", route="/metrics", status="200") == 1


def test_a_metrics_token_is_required_when_one_is_set(make_client: ClientFactory) -> None:
    client = make_client(background=False, metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    samples = scrape(client, Authorization=f"Bearer {TOKEN}")
    assert value(samples, "shopledger_http_requests_total", route="/metrics", status="401") == 3


def test_rq_queue_lengths_are_read_from_redis_in_scaled_mode(
    make_client: ClientFactory, redis_url: str
) -> None:
    prefix = f"m{uuid.uuid4().hex[:10]}"
    client = make_client(background=False, redis_url=redis_url, queue_prefix=prefix)
    try:
        register(client)  # its verification mail puts one delivery job on the mail queue
        samples = scrape(client)
        assert value(samples, "shopledger_rq_queue_length", queue=f"{prefix}-mail") == 1
        assert value(samples, "shopledger_rq_queue_length", queue=f"{prefix}-rules") == 0
        assert value(samples, "shopledger_rq_scheduled_jobs", queue=f"{prefix}-rules") == 0
        assert value(samples, "shopledger_metrics_source_up", source="redis") == 1
    finally:
        keys = redis.Redis.from_url(redis_url)
        found = list(keys.scan_iter(match=f"*{prefix}*", count=1000))
        if found:
            keys.delete(*found)
        keys.close()
