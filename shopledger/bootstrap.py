"""The composition root: builds and wires everything once, from Settings.

Nothing else knows the concrete infrastructure. Tests build their own container (in-memory
SQLite, a temporary file, or a MariaDB database of their own) and pass extra projections or
handlers instead of patching.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import StoredEvent
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Engine, Inspector, make_url
from sqlalchemy.schema import CreateColumn

from aggregates.catalog import DEFAULT_BANNED_KEYWORDS, BannedKeywords
from commands import idempotency, outbox
from commands.accounts import HANDLERS as ACCOUNT_HANDLERS
from commands.application import ShopledgerApplication
from commands.bus import CommandBus, Handler
from commands.cache import AggregateCache
from commands.cancellation import HANDLERS as CANCELLATION_HANDLERS
from commands.catalog import HANDLERS as CATALOG_HANDLERS
from commands.checkpoints import HANDLERS as CHECKPOINT_HANDLERS
from commands.credentials import KeyFileError, KeyRing, Passwords, Tokens, load_or_create_secret
from commands.customers import HANDLERS as CUSTOMER_HANDLERS
from commands.disputes import HANDLERS as DISPUTE_HANDLERS
from commands.fulfilment import HANDLERS as FULFILMENT_HANDLERS
from commands.idempotency import IdempotencyStore
from commands.inventory import HANDLERS as INVENTORY_HANDLERS
from commands.inventory import low_stock_policy
from commands.loyalty import handlers as loyalty_handlers
from commands.loyalty import loyalty_policy
from commands.messages import HANDLERS as MESSAGE_HANDLERS
from commands.moderation import HANDLERS as MODERATION_HANDLERS
from commands.orders import HANDLERS as ORDER_HANDLERS
from commands.orders import timer_policy
from commands.payments import HANDLERS as PAYMENT_HANDLERS
from commands.persistence import ApplicationRecorder
from commands.promotions import HANDLERS as PROMOTION_HANDLERS
from commands.returns import HANDLERS as RETURN_HANDLERS
from commands.reviews import HANDLERS as REVIEW_HANDLERS
from commands.sandbox_ledger import SqlLedger
from commands.sandbox_ledger import metadata as sandbox_ledger_metadata
from gateways.sandbox import CardGateway, SandboxGateway
from projections import tracking
from projections.accounts import Accounts
from projections.aftersale import AfterSale
from projections.analytics import ANALYTICS
from projections.audit_checkpoints import AuditCheckpoints
from projections.base import Projection
from projections.carts import Carts
from projections.catalog import Catalog
from projections.coupons import Coupons
from projections.customers import Customers
from projections.deadlines import Deadline, Deadlines
from projections.event_stats import EventStats
from projections.inventory import InventoryView
from projections.locks import ProjectionLocks
from projections.loyalty import Loyalty
from projections.messages import Messages
from projections.notifications import Notifications
from projections.operation_log import OperationLog
from projections.orders import Orders
from projections.payment_checks import PaymentChecks
from projections.reviews import Reviews
from projections.runner import Decoded, ProjectionRunner, ProjectionWorker
from projections.sales import SalesStats
from projections.wakeup import Progress, Wakeup
from shopledger.settings import Settings
from workers import rules as timed_rules
from workers.embedded import RulesThread
from workers.jobs import RqDispatcher
from workers.mail import MailDeliverer, MailThread, default_sender, transport_for
from workers.payment_recovery import PaymentRecovery, PaymentRecoveryThread, recovery_tick
from workers.rules import TimedRules, delays_for

log = logging.getLogger(__name__)

#: Every projection of the product, by name (later issues add theirs here).
PROJECTIONS: tuple[type[Projection], ...] = (
    EventStats,
    Accounts,
    Catalog,
    InventoryView,
    SalesStats,
    Carts,
    Coupons,
    Orders,
    Notifications,
    Deadlines,
    Reviews,
    Messages,
    AfterSale,
    Customers,
    Loyalty,
    *ANALYTICS,
    PaymentChecks,
    OperationLog,
    AuditCheckpoints,
)
#: Every command handler of the product.
HANDLERS: dict[type, Handler] = {
    **ACCOUNT_HANDLERS,
    **CATALOG_HANDLERS,
    **INVENTORY_HANDLERS,
    **ORDER_HANDLERS,
    **CANCELLATION_HANDLERS,
    **PAYMENT_HANDLERS,
    **FULFILMENT_HANDLERS,
    **REVIEW_HANDLERS,
    **PROMOTION_HANDLERS,
    **MESSAGE_HANDLERS,
    **RETURN_HANDLERS,
    **DISPUTE_HANDLERS,
    **MODERATION_HANDLERS,
    **CUSTOMER_HANDLERS,
    **CHECKPOINT_HANDLERS,
}


class StartupError(Exception):
    """The service cannot start; the message says why in one line."""


@dataclass
class Container:
    settings: Settings
    app: ShopledgerApplication
    bus: CommandBus
    idempotency: IdempotencyStore
    locks: ProjectionLocks
    wakeup: Wakeup
    progress: Progress
    projections: dict[str, type[Projection]]
    passwords: Passwords
    tokens: Tokens
    link_secret: bytes = field(repr=False)
    mail: MailDeliverer
    mail_thread: MailThread
    rules: TimedRules
    rules_thread: RulesThread
    dispatcher: RqDispatcher | None  # scaled mode: jobs go to RQ
    #: The card gateway of this deployment: the built-in sandbox (with its ledger in this
    #: database) where allowed, else None (card payments answer 503).
    card_gateway: CardGateway | None = None
    payment_recovery: PaymentRecovery | None = None
    payment_recovery_thread: PaymentRecoveryThread | None = None
    _runner: ProjectionRunner | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def engine(self) -> Engine:
        return self.app.factory.datastore.engine  # type: ignore[attr-defined,no-any-return]

    def load(self, aggregate_id: UUID) -> Any:
        """An aggregate read outside a command, through the aggregate cache when it is on
        (raises AggregateNotFoundError)."""
        cache = self.bus.cache
        if cache is None:
            return self.app.repository.get(aggregate_id)
        return cache.load(self.app.repository.get, aggregate_id)

    def live_projection(self, name: str) -> Projection:
        cls = self.projections[name]
        projection = cls(cls.live_tables())
        if isinstance(projection, Deadlines):
            projection.on_change = self.deadlines_changed
        return projection

    def deadlines_changed(self, deadlines: list[Deadline]) -> None:
        """After the deadlines projection commits: schedule the new deadlines' firing."""
        if self.dispatcher is not None:
            self.dispatcher.deadlines_changed(deadlines)
        else:
            self.rules_thread.deadlines_changed(deadlines)

    def runner(self, names: Iterable[str] | None = None) -> ProjectionRunner:
        selected = list(names) if names else list(self.projections)
        unknown = [n for n in selected if n not in self.projections]
        if unknown:
            raise KeyError(f"unknown projection(s): {', '.join(unknown)}")
        decoded = Decoded()  # one decode of an event for all the runner's projections
        workers = [
            ProjectionWorker(
                self.app,
                self.live_projection(n),
                self.locks,
                self.settings.projection_batch_size,
                decoded,
                self.settings.projection_catch_up_batch_size,
            )
            for n in selected
        ]
        return ProjectionRunner(
            workers,
            self.wakeup,
            self.progress,
            self.settings.projection_poll_interval.total_seconds(),
            max_retry_delay=self.settings.reconnect_max_delay.total_seconds(),
        )

    def start_background(self) -> None:
        """Embedded mode: keep every projection current from a thread of this process."""
        if self._runner is None:
            self._runner = self.runner()
            self._runner.start()

    def start_mail(self) -> None:
        """Deliver the mail outbox from a thread of this process."""
        self.mail_thread.start()

    def start_rules(self) -> None:
        """Embedded mode: fire the timed rules' due deadlines from a thread of this process."""
        self.rules_thread.start()
        if self.payment_recovery_thread is not None:
            self.payment_recovery_thread.start()

    def catch_up(self, timeout: float = 30.0) -> None:
        """Bring every projection up to the head now (tests and tools)."""
        self.runner().catch_up(timeout)
        self.progress.advanced()

    def head_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def banned_keywords(self) -> list[str]:
        """The admin-managed banned keyword list as it stands in the event store."""
        try:
            current: BannedKeywords = self.app.repository.get(BannedKeywords.ID)
        except AggregateNotFoundError:
            return list(DEFAULT_BANNED_KEYWORDS)
        return list(current.keywords)

    def positions(self) -> dict[str, int]:
        with self.app.recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
            return tracking.read_positions(session, list(self.projections))

    def wait_for(self, names: Iterable[str], position: int, timeout: float) -> bool:
        """True once every named projection has processed ``position`` (X-Min-Position)."""
        names = list(names)
        deadline = time.monotonic() + timeout
        while True:
            with self.app.recorder.transaction(commit=False) as session:  # type: ignore[attr-defined]
                current = tracking.read_positions(session, names)
            if all(p >= position for p in current.values()):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Woken by this process's projector; a projector elsewhere is polled for.
            self.progress.wait(min(remaining, 0.02))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            self._runner.stop()
        self.mail_thread.stop()
        self.rules_thread.stop()
        if self.payment_recovery_thread is not None:
            self.payment_recovery_thread.stop()
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.wakeup.close()
        self.progress.close()
        self.app.close()
        # The library's close leaves the pool open: its connections would linger until garbage
        # collection (a SQLite file's write-ahead log unmerged, a MariaDB session held).
        self.engine.dispose()


def _app_env(settings: Settings) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "commands.persistence:Factory",
        "SQLALCHEMY_URL": settings.resolved_database_url,
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CREATE_TABLE": "y",
    }


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message
        return "<unparseable url>"


def bootstrap(
    settings: Settings,
    *,
    projections: Iterable[type[Projection]] = (),
    handlers: dict[type, Handler] | None = None,
) -> Container:
    """Build the application and its infrastructure; raise StartupError with a clear message."""
    url = settings.resolved_database_url
    if url.startswith("sqlite") and ":memory:" not in url:
        db_path = make_url(url).database
        if db_path:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    all_projections = {p.name: p for p in (*PROJECTIONS, *projections)}
    for attempt in range(1, 11):
        try:
            app = _open(settings, all_projections)
            break
        except Exception as exc:
            # Processes started together on a new database (scaled mode) race to create the
            # schema: "check, then CREATE" loses to a rival's CREATE. Each try gets further.
            if attempt < 10 and _created_meanwhile(exc):
                time.sleep(0.05 * attempt)
                continue
            raise StartupError(
                f"cannot open the database at {_safe_url(url)}: {_first_line(exc)}"
            ) from exc
    engine: Engine = app.factory.datastore.engine  # type: ignore[attr-defined]

    try:
        keys = KeyRing.from_files(
            settings.resolved_jwt_private_key_file, settings.jwt_previous_key_file
        )
    except KeyFileError as exc:
        raise StartupError(f"cannot load the JWT signing key: {exc}") from None
    try:
        link_secret = load_or_create_secret(settings.resolved_link_secret_file)
    except KeyFileError as exc:
        raise StartupError(f"invalid setting SHOPLEDGER_LINK_SECRET_FILE: {exc}") from None
    try:
        transport = transport_for(settings.resolved_mail_url)
    except ValueError as exc:
        raise StartupError(f"invalid setting SHOPLEDGER_MAIL_URL: {exc}") from None
    mail = MailDeliverer(
        lambda commit: app.recorder.transaction(commit=commit),  # type: ignore[attr-defined]
        transport,
        default_sender(settings.mail_from),
    )
    mail_thread = MailThread(mail)
    wakeup = Wakeup(settings.redis_url, _safe_url(url))
    delays = delays_for(settings.ship_reminder_after, settings.auto_deliver_after)
    dispatcher = (
        RqDispatcher(
            settings.redis_url, settings.queue_prefix, delays, settings.rule_sweep_interval
        )
        if settings.redis_url
        else None
    )
    recorder: ApplicationRecorder = app.recorder  # type: ignore[assignment]
    mapper = app.mapper
    cache = AggregateCache(
        recorder.changes_after,
        lambda: recorder.max_notification_id() or 0,
        settings.aggregate_cache_size,
        decode=lambda change: mapper.to_domain_event(
            StoredEvent(
                originator_id=change[1],
                originator_version=change[2],
                topic=change[3],
                state=change[4],
            )
        ),
    )
    loyalty = settings.loyalty_rules()
    bus = CommandBus(
        app,
        {**HANDLERS, **loyalty_handlers(loyalty), **(handlers or {})},
        max_attempts=settings.command_max_attempts,
        cache=cache,
        policies=[
            low_stock_policy(settings.low_stock_threshold),
            timer_policy(delays),
            loyalty_policy(loyalty),
        ],
        on_commit=wakeup.appended,
        # Mail queued by a command: wake this process's mail thread, or enqueue an RQ job.
        on_mail=mail_thread.wake
        if settings.mail_in_process or dispatcher is None
        else dispatcher.mail_soon,
    )
    rules = TimedRules(
        lambda commit: app.recorder.transaction(commit=commit),  # type: ignore[attr-defined]
        bus,
        delays,
        settings.rule_retry_after,
    )
    card_gateway: CardGateway | None = (
        SandboxGateway(
            SqlLedger(lambda commit: app.recorder.transaction(commit=commit)),  # type: ignore[attr-defined]
            settings.sandbox_slow_card_delay.total_seconds(),
        )
        if settings.sandbox_cards_enabled
        else None
    )
    recovery = PaymentRecovery(
        lambda commit: app.recorder.transaction(commit=commit),  # type: ignore[attr-defined]
        bus,
        card_gateway,
        settings.payment_recovery_after,
    )
    return Container(
        settings=settings,
        app=app,
        bus=bus,
        idempotency=IdempotencyStore(app, settings.idempotency_ttl, settings.idempotency_lease),
        locks=ProjectionLocks(engine),
        wakeup=wakeup,
        progress=Progress(settings.redis_url, _safe_url(url)),
        projections=all_projections,
        passwords=Passwords(),
        tokens=Tokens(
            keys, settings.public_url, settings.access_token_ttl, settings.refresh_token_ttl
        ),
        link_secret=link_secret,
        mail=mail,
        mail_thread=mail_thread,
        rules=rules,
        rules_thread=RulesThread(rules, min(settings.rule_sweep_interval, timedelta(seconds=1))),
        dispatcher=dispatcher,
        card_gateway=card_gateway,
        payment_recovery=recovery,
        payment_recovery_thread=PaymentRecoveryThread(
            recovery,
            recovery_tick(settings.payment_recovery_after, settings.rule_sweep_interval),
        ),
    )


def _open(
    settings: Settings, all_projections: dict[str, type[Projection]]
) -> ShopledgerApplication:
    """The application, with every table of ours created and every projection tracked."""
    app = ShopledgerApplication(env=_app_env(settings))
    try:
        engine: Engine = app.factory.datastore.engine  # type: ignore[attr-defined]
        schema = inspect(engine)  # the tables as they were before this start
        existed = set(schema.get_table_names())

        def create_missing(metadata: MetaData) -> None:
            # One look at the schema for all, not one per table: a restart creates nothing.
            # A rival process creating one meanwhile fails this start, which bootstrap retries.
            missing = [t for t in metadata.sorted_tables if t.name not in existed]
            if missing:
                metadata.create_all(engine, tables=missing, checkfirst=False)

        for metadata in (
            tracking.metadata,
            idempotency.metadata,
            outbox.metadata,
            timed_rules.metadata,
            sandbox_ledger_metadata,
        ):
            create_missing(metadata)
        # Tables made by an older version get the indexes declared since (the outbox's).
        _add_missing_indexes(engine, schema, outbox.metadata, existed)
        for cls in all_projections.values():
            tables = cls.live_tables()
            if not tables:
                continue
            metadata = next(iter(tables.values())).metadata
            create_missing(metadata)
            _add_missing_columns(engine, schema, metadata, existed, cls.name)
            _add_missing_indexes(engine, schema, metadata, existed)
        with app.recorder.transaction(commit=True) as session:  # type: ignore[attr-defined]
            for name in all_projections:
                tracking.ensure_row(session, name)
    except BaseException:
        app.close()
        raise
    return app


def _add_missing_columns(
    engine: Engine, schema: Inspector, metadata: MetaData, existed: set[str], projection: str
) -> None:
    """Add the columns a newer version declares on read-model tables that already
    ``existed``, when the column says no past event feeds it (``info["added_later"]``: it
    starts NULL or at its server default, as it would after a rebuild). Any other missing
    column means the table predates what this version computes: refuse to start, naming the
    rebuild that fixes it."""
    for table in metadata.sorted_tables:
        if table.name not in existed:
            continue
        have = {c["name"] for c in schema.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.info.get("added_later"):
                raise StartupError(
                    f"read-model table {table.name} has no column {column.name}: run"
                    f" `shopledger projections rebuild {projection}`"
                )
            spec = CreateColumn(column).compile(dialect=engine.dialect)
            table_name = engine.dialect.identifier_preparer.format_table(table)
            log.info("adding column", extra={"column": column.name, "table": table.name})
            try:
                with engine.begin() as conn:
                    # DDL from our own table definitions (no outside input in it).
                    conn.execute(text(f"ALTER TABLE {table_name} ADD COLUMN {spec}"))
            except Exception as exc:
                if not _created_meanwhile(exc):
                    raise


def _add_missing_indexes(
    engine: Engine, schema: Inspector, metadata: MetaData, existed: set[str]
) -> None:
    """Create the indexes a newer version declares on read-model tables that already
    ``existed`` (``create_all`` creates only missing tables). Indexes are compared by their
    columns, not their names: a rebuild swaps in tables whose indexes keep the shadow table's
    names. An index no longer declared is left alone; a rebuild of its projection drops it."""
    for table in metadata.sorted_tables:
        if table.name not in existed:
            continue
        have = {tuple(ix["column_names"]) for ix in schema.get_indexes(table.name)}
        for index in table.indexes:
            if tuple(index.columns.keys()) not in have:
                log.info("creating index", extra={"index": index.name, "table": table.name})
                index.create(engine)


def _created_meanwhile(exc: BaseException) -> bool:
    """A CREATE TABLE/INDEX that failed because another process just created it."""
    text_ = str(exc).lower()
    return "already exists" in text_ or "duplicate key name" in text_ or "duplicate column" in text_


def check_database(container: Container) -> None:
    with container.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _first_line(exc: BaseException) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None and str(cause) == "":
        cause = cause.__cause__
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]
