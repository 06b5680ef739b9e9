"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api import errors
from api.middleware import RequestContextMiddleware
from api.routes import health
from shopledger.bootstrap import Container

ROUTERS: tuple[APIRouter, ...] = (health.router,)


def create_app(
    container: Container,
    *,
    run_background: bool | None = None,
    extra_routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """Build the API around ``container``.

    ``run_background`` (default: embedded mode) keeps projections current from a thread of
    this process; the container is closed on shutdown.
    """
    background = container.settings.projections_in_process if run_background is None else run_background

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            container.start_background()
        try:
            yield
        finally:
            container.close()

    app = FastAPI(
        title="shopledger",
        version="0.1.0",
        summary="Event-sourced multi-seller e-commerce backend (TWD, 5% VAT, ECPay)",
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)
    app.add_middleware(RequestContextMiddleware)
    for router in (*ROUTERS, *extra_routers):
        app.include_router(router)
    return app
