"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ContainerDep
from api.openapi import documented
from api.responses import Liveness, Readiness
from shopledger.bootstrap import check_database

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=None, responses=documented(Liveness))
def healthz() -> dict[str, str]:
    """Process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        **documented(Readiness, description="Ready"),
        503: {"model": Readiness, "description": "Not ready: see which check failed"},
    },
)
def readyz(container: ContainerDep) -> JSONResponse:
    """Ready to serve: database and Redis reachable, projections not too far behind.

    Redis is checked only when configured."""
    checks: dict[str, Any] = {}
    ready = True
    try:
        check_database(container)
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        ready = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    if container.settings.redis_url:
        try:
            import redis

            client = redis.Redis.from_url(container.settings.redis_url, socket_timeout=1)
            client.ping()
            client.close()
            checks["redis"] = {"ok": True}
        except Exception as exc:  # noqa: BLE001
            ready = False
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
    if checks["database"]["ok"]:
        head = container.head_position()
        max_lag = container.settings.ready_max_lag
        lags = {name: head - pos for name, pos in container.positions().items()}
        lagging = {name: lag for name, lag in lags.items() if lag > max_lag}
        checks["projections"] = {"ok": not lagging, "head": head, "lag": lags, "maxLag": max_lag}
        ready = ready and not lagging
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
