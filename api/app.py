"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api import errors
from api.auth import HashPool
from api.middleware import RequestContextMiddleware
from api.routes import auth, cart, catalog, fulfilment, health, inventory, payments, sales, users
from shopledger.bootstrap import Container

ROUTERS: tuple[APIRouter, ...] = (
    health.router, auth.router, users.router, catalog.router, inventory.router, cart.router,
    sales.router, payments.router, fulfilment.router,
)


def create_app(
    container: Container,
    *,
    run_background: bool | None = None,
    run_mail: bool | None = None,
    run_rules: bool | None = None,
    extra_routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """Build the API around ``container``.

    ``run_background`` (default: embedded mode) keeps projections current from a thread of
    this process, ``run_mail`` delivers the mail outbox from another (default: embedded mode)
    and ``run_rules`` fires the timed rules from a third (default: embedded mode, when the
    projections run here too). With Redis, ``shopledger worker`` does mail and rules on RQ.
    The container is closed on shutdown.
    """
    settings = container.settings
    background = settings.projections_in_process if run_background is None else run_background
    mail = settings.mail_in_process if run_mail is None else run_mail
    rules = (background and settings.embedded) if run_rules is None else run_rules

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            container.start_background()
        if mail:
            container.start_mail()
        if rules:
            container.start_rules()
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
    app.state.hash_pool = HashPool(settings.password_hash_concurrency, settings.password_hash_queue)
    errors.install(app)
    app.add_middleware(RequestContextMiddleware)
    for router in (*ROUTERS, *extra_routers):
        app.include_router(router)
    return app
