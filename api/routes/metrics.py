"""``GET /metrics``: Prometheus text format (api/metrics.py says what is in it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import generate_latest

from api.errors import ApiError
from api.metrics import Metrics, token_matches
from api.openapi import documented

router = APIRouter(tags=["health"])

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
#: The classic text format every Prometheus version reads (our names need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        **documented(errors={401: "UNAUTHORIZED"}),
        200: {
            "description": "The Prometheus text exposition format (version 0.0.4)",
            "content": _TEXT,
        },
    },
)
def metrics(request: Request) -> Response:
    """Metrics of this API process for Prometheus.

    Request counts and latency by route template and status, command retries and
    conflicts, and read at scrape time from the database and Redis: projection lag, pending
    and overdue deadlines, the mail outbox backlog and RQ queue lengths. Each API process
    answers with its own counters: scrape every process, not the load balancer. With
    ``SHOPLEDGER_METRICS_TOKEN`` set it needs ``Authorization: Bearer <that token>``."""
    settings = request.app.state.container.settings
    if not token_matches(settings.metrics_token, request.headers.get("authorization")):
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "GET /metrics needs Authorization: Bearer <SHOPLEDGER_METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    registry = request.app.state.metrics.registry if _has_metrics(request) else None
    body = generate_latest(registry) if registry is not None else b""
    return Response(body, media_type=CONTENT_TYPE)


def _has_metrics(request: Request) -> bool:
    return isinstance(getattr(request.app.state, "metrics", None), Metrics)
