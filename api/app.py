"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors, openapi
from api.auth import HashPool
from api.authlimits import AuthLimits
from api.consistency import ConsistencyMiddleware, CookieSigner, LocalMarks, MarkStore, RedisMarks
from api.metrics import Metrics, MetricsMiddleware
from api.middleware import (
    BodyLimitMiddleware,
    ContextMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    TrustedProxyMiddleware,
)
from api.push import PushHub
from api.ratelimit import rate_limiter
from api.readonly import ReadOnlyRoleMiddleware
from api.routes import (
    aftersale,
    audit,
    audit_chain,
    auth,
    cart,
    catalog,
    customers,
    dashboard,
    fulfilment,
    health,
    inventory,
    live,
    loyalty,
    messages,
    metrics,
    moderation,
    pages,
    passwords,
    payments,
    promotions,
    reports,
    reviews,
    sales,
    users,
)
from api.routes.payments import NOTIFY_PATH as ECPAY_NOTIFY_PATH
from api.validation import BodyRules, body_rules
from audit.jobs import CheckpointThread
from shopledger.bootstrap import Container
from shopledger.settings import Settings

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    auth.router,
    users.router,
    customers.router,
    loyalty.router,
    catalog.router,
    moderation.router,
    promotions.router,
    inventory.router,
    cart.router,
    sales.router,
    reviews.router,
    messages.router,
    live.router,
    payments.router,
    fulfilment.router,
    pages.router,
    reports.router,
    dashboard.router,
    aftersale.router,
    audit.router,
    audit_chain.router,
    passwords.router,
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
            app.state.audit_checkpoints.start()  # signs the event chain's head every interval
        if not background:
            container.progress.listen()  # the projector's advances, through Redis
        try:
            yield
        finally:
            app.state.audit_checkpoints.stop()
            app.state.push.stop()
            container.close()

    app = FastAPI(
        title="shopledger",
        version="0.1.0",
        summary="Event-sourced multi-seller e-commerce backend (TWD, 5% VAT, ECPay)",
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.hash_pool = HashPool(settings.password_hash_concurrency, settings.password_hash_queue)
    app.state.marks = mark_store(settings)
    app.state.rate_limiter = rate_limiter(settings)
    app.state.auth_limits = AuthLimits(app.state.rate_limiter, settings)
    app.state.push = PushHub(container.engine, container.progress)
    app.state.audit_checkpoints = CheckpointThread(container)
    app.state.position_cookie = CookieSigner(container.tokens.keys.derive("shopledger sl_pos"))
    errors.install(app)
    # Innermost: an auditor's write is refused before any route (or its body) is looked at.
    app.add_middleware(ReadOnlyRoleMiddleware, tokens=container.tokens)
    app.add_middleware(
        ContextMiddleware, var=body_rules, value=BodyRules(container.banned_keywords)
    )
    # Outermost last: the proxy decides who the client is before anything logs or limits it.
    app.add_middleware(
        ConsistencyMiddleware,
        marks=app.state.marks,
        signer=app.state.position_cookie,
        secure_cookie=settings.secure_cookies,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # ECPay's notifier reads "0|reason"; that route caps its (small) form body itself.
        exempt=[ECPAY_NOTIFY_PATH],
    )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials="*" not in settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Min-Position",
                "X-Consistency",
                "X-CSRF-Token",
                "X-Request-ID",
            ],
            expose_headers=[
                "X-Event-Position",
                "Retry-After",
                "X-Request-ID",
                "Idempotent-Replayed",
                "Location",
            ],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.https)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(TrustedProxyMiddleware, trusted=settings.trusted_proxy_networks)
    # Outermost of all: GET /metrics counts and times every answer, by route template.
    app.state.metrics = Metrics(container)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, routes=app.router.routes)
    # Our routers' routes go in as they are rather than through include_router, which makes
    # FastAPI prepare every route again for each application (about 0.25 s of CPU, on its
    # first request): a process that builds many applications (the tests) paid it each time.
    # The result is the same for a router with nothing to combine with the application (a
    # prefix is already in its routes' paths); one that has goes through include_router.
    for router in (*ROUTERS, *extra_routers):
        if _combines_with_the_app(router):
            app.include_router(router)
        else:
            app.router.routes.extend(router.routes)
    openapi.install(app)
    return app


def _combines_with_the_app(router: APIRouter) -> bool:
    """Whether ``router`` has anything include_router would combine with the application:
    dependencies, startup or shutdown handlers, or a lifespan of its own."""
    return bool(
        router.dependencies
        or router.on_startup
        or router.on_shutdown
        or not isinstance(router.lifespan_context, _DEFAULT_LIFESPAN)
    )


#: What an APIRouter made without a lifespan holds (a private FastAPI type, found, not named).
_DEFAULT_LIFESPAN = type(APIRouter().lifespan_context)


def mark_store(settings: Settings) -> MarkStore:
    """Where callers' read-your-writes marks live: Redis when several API processes may
    answer one caller (scaled mode), this process otherwise."""
    if settings.redis_url is None:
        return LocalMarks()
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return RedisMarks(client, settings.queue_prefix)
