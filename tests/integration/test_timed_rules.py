"""Timed rules: unpaid expiry, the ship reminder and auto-delivery, fired in embedded mode (a
thread of the API process) and by real RQ worker processes on Redis; stale deadlines, racing
workers, a flushed Redis and a worker killed mid-job.

Durations are seconds (set through settings); every wait is generous, because timing claims
belong in bench/timers.py, not here.
"""

from __future__ import annotations

import email
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from aggregates.loyalty import PointsAccount
from api.app import create_app
from commands.application import EventMeta
from commands.orders import SendShipReminder
from projections.deadlines import (
    AUTO_DELIVER,
    LEVEL_REVIEW,
    SHIP_REMINDER,
    UNPAID_EXPIRY,
    Deadline,
)
from projections.deadlines import live as deadline_tables
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings, shared_jwt_key
from tests.support.accounts import User, admin, container_of, verified_user
from tests.support.catalog import add_to_cart, checkout, seller, stocked_product
from tests.support.processes import cli_env, spawn, stop, wait_until
from workers import jobs
from workers.rules import TimedRules, delays_for

pytestmark = pytest.mark.slow


# --- a small shop over HTTP ---------------------------------------------------------------------
@dataclass
class Shop:
    client: TestClient
    boss: User
    seller: User
    buyer: User
    product: str

    @property
    def container(self) -> Container:
        return container_of(self.client)

    def order(self, quantity: int = 1, method: str = "CREDIT_CARD") -> str:
        self.container.catch_up()  # checkout reads the catalog: do not wait for its projector
        add_to_cart(self.client, self.buyer, self.product, quantity)
        self.container.catch_up()
        r = checkout(self.client, self.buyer, paymentMethod=method)
        assert r.status_code == 201, r.text
        return str(r.json()["orderId"])

    def pay(self, oid: str) -> None:
        r = self.client.put(
            f"/api/sales/orders/{oid}/status", json={"status": "PAID"}, headers=self.boss.auth
        )
        assert r.status_code == 200, r.text

    def ship_and_deliver(self, oid: str) -> None:
        """The seller ships everything and the carrier reports it delivered."""
        c, auth = self.client, self.seller.auth
        assert c.put(f"/api/sales/orders/{oid}/process", json={}, headers=auth).status_code == 200
        r = c.post(
            f"/api/sales/orders/{oid}/shipments",
            json={"carrier": "BLACK_CAT", "trackingNumber": "T1"},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        r = c.put(
            f"/api/sales/shipments/{r.json()['shipmentId']}/status",
            json={"status": "DELIVERED"},
            headers=auth,
        )
        assert r.status_code == 200 and r.json()["allDelivered"] is True, r.text

    def status(self, oid: str) -> str:
        r = self.client.get(f"/api/sales/orders/{oid}", headers=self.boss.auth)
        if r.status_code == 404:
            return ""  # not in the read model yet
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    def events(self, oid: str) -> list[tuple[str, str | None]]:
        """(type, actor) of every event of the order, read from the event store."""
        r = self.client.get(f"/api/sales/orders/{oid}/timeline", headers=self.boss.auth)
        assert r.status_code == 200, r.text
        return [(e["type"], e["actor"]) for e in r.json()["events"]]

    def notices(self, user: User, kind: str) -> list[dict[str, Any]]:
        r = self.client.get("/api/notifications", params={"pageSize": 100}, headers=user.auth)
        assert r.status_code == 200, r.text
        return [n for n in r.json()["notifications"] if n["type"] == kind]

    def available(self) -> int:
        self.container.catch_up()
        r = self.client.get(
            "/api/inventory/stock", params={"productId": self.product}, headers=self.seller.auth
        )
        return int(r.json()["totals"]["available"])

    def deadlines(self, oid: str) -> set[str]:
        d = deadline_tables["deadlines"]
        with self.container.engine.connect() as conn:
            return set(conn.execute(select(d.c.rule).where(d.c.order_id == oid)).scalars())


def open_shop(client: TestClient, stock: int = 50) -> Shop:
    boss = admin(client)
    shop = seller(client, boss)
    return Shop(
        client, boss, shop, verified_user(client), stocked_product(client, boss, shop, stock)
    )


def count(events: list[tuple[str, str | None]], kind: str) -> int:
    return sum(1 for t, _ in events if t == kind)


def mails_to(directory: Path, address: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] == address:
            found.append(message)
    return found


def reminders_to(directory: Path, address: str) -> int:
    return sum(1 for m in mails_to(directory, address) if "waiting to ship" in str(m["Subject"]))


# --- embedded mode -------------------------------------------------------------------------------
def test_embedded_rules_expire_remind_and_auto_deliver(
    database_url: str, make_client, tmp_path: Path
) -> None:
    client = make_client(
        database_url, unpaid_order_ttl="PT3S", ship_reminder_after="PT2S", auto_deliver_after="PT1S"
    )
    shop = open_shop(client)
    before = shop.available()
    # each order that must not expire is paid at once (a slow machine must not race the TTL)
    reminded = shop.order()
    shop.pay(reminded)
    delivered = shop.order()
    shop.pay(delivered)
    unpaid = shop.order(2)
    shop.ship_and_deliver(delivered)

    assert wait_until(lambda: shop.status(unpaid) == "CANCELLED", 30)
    assert wait_until(lambda: shop.status(delivered) == "DELIVERED", 30)
    assert wait_until(lambda: len(shop.notices(shop.seller, "SHIP_REMINDER")) == 1, 30)
    # expiry: cancelled by the system, stock released, the buyer told
    assert ("Expired", "system:unpaid-expiry") in shop.events(unpaid)
    assert wait_until(
        lambda: shop.available() == before - 2, 10
    )  # only the two paid orders hold stock
    assert wait_until(
        lambda: any(
            n["data"]["orderId"] == unpaid for n in shop.notices(shop.buyer, "ORDER_EXPIRED")
        ),
        10,
    )
    # the reminder: once, to the seller, by notification and by email
    assert shop.events(reminded).count(("ShipReminderSent", "system:ship-reminder")) == 1
    mail_dir = tmp_path / "mail"
    assert wait_until(lambda: reminders_to(mail_dir, shop.seller.email) == 1, 10)
    # auto-delivery: the system marked it DELIVERED after the carrier did
    assert ("Delivered", "system:auto-delivery") in shop.events(delivered)
    for oid in (unpaid, delivered):
        assert wait_until(lambda: not shop.deadlines(oid), 10)  # noqa: B023
    assert shop.status(reminded) == "PAID" and count(shop.events(reminded), "Expired") == 0


def test_stale_deadlines_are_no_ops(database_url: str, make_client) -> None:
    """Paid before expiry, confirmed before auto-delivery: firing the (stale) deadline changes
    nothing, whether the deadlines projection has caught up or not."""
    client = make_client(
        database_url, background=False, unpaid_order_ttl="PT1S", auto_deliver_after="PT1S"
    )
    shop = open_shop(client)
    rules = shop.container.rules
    paid, confirmed = shop.order(), shop.order()
    shop.pay(confirmed)
    shop.ship_and_deliver(confirmed)
    shop.container.catch_up()
    assert shop.deadlines(paid) == {UNPAID_EXPIRY} and AUTO_DELIVER in shop.deadlines(confirmed)

    shop.pay(paid)
    r = client.post(f"/api/sales/orders/{confirmed}/confirm-receipt", headers=shop.buyer.auth)
    assert r.status_code == 200 and r.json()["status"] == "DELIVERED"
    time.sleep(1.2)  # both deadlines are due now; the projection has not seen the payment yet
    assert rules.fire(paid, UNPAID_EXPIRY).outcome == "noop"
    assert rules.fire(confirmed, AUTO_DELIVER).outcome == "noop"
    shop.container.catch_up()
    assert rules.fire(paid, UNPAID_EXPIRY).outcome == "gone"
    assert rules.fire(confirmed, AUTO_DELIVER).outcome == "gone"
    assert shop.deadlines(paid) == {SHIP_REMINDER} and not shop.deadlines(confirmed)

    assert shop.status(paid) == "PAID" and count(shop.events(paid), "Expired") == 0
    assert shop.events(confirmed)[-1] == ("Delivered", shop.buyer.user_id)
    # the delivery earned points: the buyer's level is due for review (loyalty), once
    points_account = str(PointsAccount.create_id(shop.buyer.user_id))
    assert rules.fire(points_account, LEVEL_REVIEW).outcome == "applied"
    shop.container.catch_up()
    # and a sweep finds nothing left to do
    now = rules.clock()
    assert rules.sweep(now, now, fire_now=lambda d: pytest.fail(f"fired {d}")).fired == 0


def test_a_cod_order_has_no_expiry_its_reminder_runs_from_placement_and_a_rebuild_agrees(
    database_url: str, make_client
) -> None:
    from projections.deadlines import Deadlines
    from projections.rebuild import rebuild

    client = make_client(database_url, background=False, unpaid_order_ttl="PT1H")
    shop = open_shop(client)
    cod, card, paid = shop.order(method="COD"), shop.order(), shop.order()
    shop.pay(paid)
    container = shop.container
    container.catch_up()
    assert (shop.deadlines(cod), shop.deadlines(card), shop.deadlines(paid)) == (
        {SHIP_REMINDER},  # a COD order is shipped unpaid: the 7-day clock starts at placement
        {UNPAID_EXPIRY},
        {SHIP_REMINDER},
    )
    d = deadline_tables["deadlines"]

    def rows() -> list[Any]:
        with container.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(d).order_by(d.c.order_id, d.c.rule))]

    incremental = rows()
    rebuild(container.app, Deadlines, container.locks)
    assert rows() == incremental

    # Each timer's due time is recorded when its clock starts, from the settings of the
    # process that started it (7 days here): a worker configured otherwise fires it then.
    now = container.rules.clock()
    assert [d.order_id for d, _ in container.rules.pending(now, now)] == []
    impatient = TimedRules(
        container.rules.transaction,
        container.bus,
        delays_for(timedelta(0), timedelta(0)),
        timedelta(minutes=1),
    )
    assert list(impatient.pending(now, now)) == []
    assert impatient.fire(cod, SHIP_REMINDER).outcome == "early"
    forced = container.bus.execute(
        SendShipReminder(uuid.UUID(cod), timedelta(0)), EventMeta("system:ship-reminder", "test")
    )
    assert forced.result is None  # the order itself says: not due
    assert count(shop.events(cod), "ShipReminderSent") == 0

    # An API process with a 1-second reminder starts one; the 7-day process fires it on time.
    quick = make_client(database_url, background=False, ship_reminder_after="PT1S")
    pid = stocked_product(quick, shop.boss, shop.seller, 5)
    container_of(quick).catch_up()
    add_to_cart(quick, shop.buyer, pid, 1)
    soon = checkout(quick, shop.buyer, paymentMethod="COD").json()["orderId"]
    container.catch_up()
    time.sleep(1.2)
    assert container.rules.fire(soon, SHIP_REMINDER).outcome == "applied"
    assert count(shop.events(soon), "ShipReminderSent") == 1

    # An order switched to COD on POST .../payments: no expiry, the reminder from placement.
    r = client.post(
        f"/api/sales/orders/{card}/payments",
        json={
            "paymentMethod": "COD",
            "amount": shop.client.get(f"/api/sales/orders/{card}", headers=shop.buyer.auth).json()[
                "total"
            ],
        },
        headers=shop.buyer.auth,
    )
    assert r.status_code == 200 and r.json()["method"] == "COD", r.text
    container.catch_up()
    assert shop.deadlines(card) == {SHIP_REMINDER}
    with container.engine.connect() as conn:
        starts = dict(
            conn.execute(select(d.c.order_id, d.c.starts_at).where(d.c.rule == SHIP_REMINDER))
            .tuples()
            .all()
        )
    placed = shop.client.get(f"/api/sales/orders/{card}", headers=shop.buyer.auth).json()
    assert starts[card].isoformat()[:19] == placed["createdAt"][:19]


# --- real RQ workers on Redis ----------------------------------------------------------------------
RQ_TIMINGS = {
    "unpaid_order_ttl": "PT3S",
    "ship_reminder_after": "PT3S",
    "auto_deliver_after": "PT1S",
    "rule_sweep_interval": "PT1S",
    "rule_retry_after": "PT2S",
}


@dataclass
class Rq:
    database_url: str
    redis_url: str
    prefix: str
    tmp_path: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]]
    timings: dict[str, str]  # the same in this process and in the workers

    def timing(self, **values: str) -> None:
        """Change durations (before starting workers and the client)."""
        self.timings.update(values)

    @property
    def log(self) -> Path:
        return self.tmp_path / "workers.log"

    def worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        timings = {f"SHOPLEDGER_{k.upper()}": v for k, v in self.timings.items()}
        proc = spawn(["worker", *args], {**self.env, **timings, **env}, self.log)
        self.procs.append(proc)
        return proc

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def flush(self) -> int:
        """Lose everything of ours in Redis: queues, scheduled jobs, registries, locks."""
        client = self.redis()
        keys = list(client.scan_iter(match=f"*{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)


def _rq(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Rq]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = cli_env(
        database_url,
        tmp_path,
        SHOPLEDGER_REDIS_URL=redis_url,
        SHOPLEDGER_QUEUE_PREFIX=prefix,
        SHOPLEDGER_MAIL_URL=f"file://{tmp_path / 'mail'}",
        SHOPLEDGER_JWT_PRIVATE_KEY_FILE=shared_jwt_key(),
    )
    handle = Rq(database_url, redis_url, prefix, tmp_path, env, [], dict(RQ_TIMINGS))
    yield handle
    for proc in handle.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in handle.procs:
        stop(proc)
    handle.flush()


@pytest.fixture
def rq(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Rq]:
    """Workers on the database under test (SQLite file, then MariaDB) and Redis."""
    yield from _rq(database_url, redis_url, tmp_path)


@pytest.fixture
def rq_mariadb(mariadb_url: str, redis_url: str, tmp_path: Path) -> Iterator[Rq]:
    """Workers as scaled mode runs them: MariaDB and Redis (the robustness tests below)."""
    yield from _rq(mariadb_url, redis_url, tmp_path)


@contextmanager
def rq_client(rq: Rq) -> Iterator[TestClient]:
    """The API in this process, scaled mode: projections here, mail and rules left to RQ."""
    values = {"redis_url": rq.redis_url, "queue_prefix": rq.prefix, **rq.timings}
    container = bootstrap(make_settings(rq.database_url, rq.tmp_path, **values))
    with TestClient(create_app(container, run_background=True, run_mail=False)) as client:
        yield client


@pytest.fixture
def rq_shop(rq: Rq) -> Iterator[Shop]:
    rq.worker()  # starting while the shop opens
    with rq_client(rq) as client:
        yield open_shop(client)


def sweeps_done(rq: Rq) -> int:
    from rq.job import Job, JobStatus

    ids = [
        k.decode().removeprefix("rq:job:")
        for k in rq.redis().scan_iter(match=f"rq:job:{rq.prefix}-sweep-*")
    ]
    found = [j for j in Job.fetch_many(ids, connection=rq.redis()) if j is not None]
    return len(found) if found and all(j.get_status() == JobStatus.FINISHED for j in found) else 0


def scheduled(rq: Rq) -> list[str]:
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    return list(
        ScheduledJobRegistry(queue=Queue(f"{rq.prefix}-rules", connection=rq.redis())).get_job_ids()
    )


@pytest.mark.redis
def test_rq_workers_expire_remind_and_auto_deliver_and_deliver_mail(rq: Rq, rq_shop: Shop) -> None:
    shop = rq_shop
    before = shop.available()
    unpaid, reminded, delivered = shop.order(2), shop.order(), shop.order()
    shop.pay(reminded)
    shop.pay(delivered)
    shop.ship_and_deliver(delivered)
    assert (
        shop.container.dispatcher is not None and not shop.container.settings.embedded
    )  # no rules here

    assert wait_until(lambda: shop.status(unpaid) == "CANCELLED", 30), rq.tail()
    assert wait_until(lambda: shop.status(delivered) == "DELIVERED", 30), rq.tail()
    assert wait_until(lambda: len(shop.notices(shop.seller, "SHIP_REMINDER")) == 1, 30), rq.tail()
    assert ("Expired", "system:unpaid-expiry") in shop.events(unpaid)
    assert ("Delivered", "system:auto-delivery") in shop.events(delivered)
    # the delivery earned points and a worker reviewed the buyer's level (loyalty)
    account = PointsAccount.create_id(shop.buyer.user_id)
    assert wait_until(
        lambda: (
            "LevelReviewed" in [type(e).__name__ for e in shop.container.app.events.get(account)]
        ),
        30,
    ), rq.tail()
    assert shop.events(reminded).count(("ShipReminderSent", "system:ship-reminder")) == 1
    assert wait_until(lambda: shop.available() == before - 2, 10)
    assert wait_until(
        lambda: any(
            n["data"]["orderId"] == unpaid for n in shop.notices(shop.buyer, "ORDER_EXPIRED")
        ),
        10,
    )
    # the reminder email went through the outbox and an RQ mail job (this process sends none)
    assert wait_until(lambda: reminders_to(rq.tmp_path / "mail", shop.seller.email) == 1, 30), (
        rq.tail()
    )


@pytest.mark.redis
def test_the_reminder_is_sent_exactly_once_with_two_workers_and_a_sweep_racing(
    rq_mariadb: Rq,
) -> None:
    rq = rq_mariadb
    rq.timing(ship_reminder_after="PT2S")
    rq.worker()
    rq.worker()
    with rq_client(rq) as client:
        reminders_race(rq, open_shop(client))


def reminders_race(rq: Rq, shop: Shop) -> None:
    from rq import Queue

    oids = [shop.order() for _ in range(3)]
    for oid in oids:
        shop.pay(oid)
    shop.container.catch_up()
    # Two firing jobs per deadline, queued in pairs so that both workers take one of the same
    # deadline together; each waits for the due moment, then both fire at once. Their sweeps
    # (every second) and the scheduled job of each deadline join in.
    queue = Queue(f"{rq.prefix}-rules", connection=rq.redis())
    for oid in oids:
        for _ in range(2):
            queue.enqueue(jobs.fire_deadline, oid, SHIP_REMINDER)
    # And this process fires them from three threads, again and again, from the due moment on.
    due = max(shop.container.rules.due_of(d) for d in map(shop_deadline(shop, SHIP_REMINDER), oids))
    outcomes: list[str] = []

    def race() -> None:
        time.sleep(max(0.0, (due - shop.container.rules.clock()).total_seconds()))
        for _ in range(20):
            for oid in oids:
                outcomes.append(jobs.fire_deadline(oid, SHIP_REMINDER))
            time.sleep(0.05)

    jobs.use(shop.container)
    try:
        racers = [threading.Thread(target=race) for _ in range(3)]
        for t in racers:
            t.start()
        for t in racers:
            t.join(60)
    finally:
        jobs.use(None)
    for oid in oids:
        assert wait_until(lambda: SHIP_REMINDER not in shop.deadlines(oid), 30), rq.tail()  # noqa: B023
        assert count(shop.events(oid), "ShipReminderSent") == 1
    by_workers = worker_outcomes(rq)
    assert len(by_workers) >= 2 * len(oids), by_workers
    assert outcomes.count("applied") + by_workers.count("applied") == len(oids), (
        outcomes,
        by_workers,
    )
    assert wait_until(lambda: len(shop.notices(shop.seller, "SHIP_REMINDER")) == len(oids), 10)
    assert wait_until(
        lambda: reminders_to(rq.tmp_path / "mail", shop.seller.email) == len(oids), 30
    ), rq.tail()
    time.sleep(0.5)
    assert reminders_to(rq.tmp_path / "mail", shop.seller.email) == len(oids)


def shop_deadline(shop: Shop, rule: str) -> Callable[[str], Deadline]:
    def get(oid: str) -> Deadline:
        found = shop.container.rules.get(oid, rule)
        assert found is not None
        return found

    return get


def worker_outcomes(rq: Rq) -> list[str]:
    """What each fire_deadline job run by the workers returned."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import FinishedJobRegistry

    queue = Queue(f"{rq.prefix}-rules", connection=rq.redis())
    ran = Job.fetch_many(FinishedJobRegistry(queue=queue).get_job_ids(), connection=rq.redis())
    return [
        str(j.return_value())
        for j in ran
        if j is not None and (j.func_name or "").endswith("fire_deadline")
    ]


@pytest.mark.redis
def test_deadlines_pending_when_redis_is_flushed_are_still_fired_by_the_sweep(
    rq_mariadb: Rq,
) -> None:
    rq = rq_mariadb
    # The sweep's horizon (its interval + 2 s) covers the TTL, so each order's job is put in
    # Redis at once, and it is still waiting there (TTL 8 s) when Redis is flushed.
    rq.timing(unpaid_order_ttl="PT8S", rule_sweep_interval="PT8S")
    rq.worker()
    with rq_client(rq) as client:
        shop = open_shop(client)
        oids = [shop.order() for _ in range(4)]
        shop.container.catch_up()
        assert wait_until(lambda: len(scheduled(rq)) >= len(oids), 6)  # one exact job per order
        assert rq.flush() > 0  # the scheduled jobs, the queues, the scheduler's lock: all gone
        for oid in oids:
            assert wait_until(lambda: shop.status(oid) == "CANCELLED", 30), rq.tail()  # noqa: B023
            assert count(shop.events(oid), "Expired") == 1


@pytest.mark.redis
def test_a_worker_killed_mid_job_leaves_the_rule_applied_exactly_once(rq_mariadb: Rq) -> None:
    from rq import Queue
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    rq = rq_mariadb
    rq.timing(unpaid_order_ttl="PT2S")
    # The victim sweeps once at start only: its one job below is the order's own firing.
    victim = rq.worker(SHOPLEDGER_RULE_SWEEP_INTERVAL="PT600S")
    with rq_client(rq) as client:
        shop = open_shop(client)
        before = shop.available()
        rules_queue = Queue(f"{rq.prefix}-rules", connection=rq.redis())
        assert wait_until(lambda: sweeps_done(rq) > 0, 30), rq.tail()
        oid = shop.order()
        shop.container.catch_up()  # the deadline is scheduled for 3 s from checkout

        def firing() -> bool:
            jobs_started = Job.fetch_many(
                StartedJobRegistry(queue=rules_queue).get_job_ids(), rq.redis()
            )
            return any(
                j is not None and (j.func_name or "").endswith("fire_deadline")
                for j in jobs_started
            )

        with hold_the_append_lock(rq.database_url):
            # The firing starts and blocks on the lock, inside its transaction.
            assert wait_until(firing, 30), rq.tail()
            time.sleep(0.3)
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
        assert shop.status(oid) == "CREATED"
        rq.worker()
        assert wait_until(lambda: shop.status(oid) == "CANCELLED", 30), rq.tail()
        time.sleep(2)  # a few sweeps pass: nothing fires twice
        assert count(shop.events(oid), "Expired") == 1
        assert wait_until(lambda: shop.available() == before, 10)


@contextmanager
def hold_the_append_lock(database_url: str) -> Iterator[None]:
    """Block every append to the event store (MariaDB) until exit: a writer then waits
    mid-transaction, between loading the order and committing its events."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT id FROM shopledger_append_lock WHERE id = 1 FOR UPDATE"))
            yield
    finally:
        engine.dispose()


@pytest.mark.redis
def test_a_worker_started_with_other_durations_fires_each_timer_when_its_event_says(
    rq_mariadb: Rq,
) -> None:
    """Scaled mode: the API process starts the timers (3-second unpaid TTL, 1-second auto-delivery); the
    worker process is configured with a day for each. It fires them at the due times their
    events recorded, not at its own."""
    rq = rq_mariadb
    rq.worker(
        SHOPLEDGER_UNPAID_ORDER_TTL="P1D",
        SHOPLEDGER_AUTO_DELIVER_AFTER="P1D",
        SHOPLEDGER_SHIP_REMINDER_AFTER="P1D",
    )
    with rq_client(rq) as client:
        shop = open_shop(client)
        unpaid, delivered = shop.order(), shop.order()
        shop.pay(delivered)
        shop.ship_and_deliver(delivered)
        assert wait_until(lambda: shop.status(unpaid) == "CANCELLED", 30), rq.tail()
        assert wait_until(lambda: shop.status(delivered) == "DELIVERED", 30), rq.tail()
        assert ("Expired", "system:unpaid-expiry") in shop.events(unpaid)
        assert ("Delivered", "system:auto-delivery") in shop.events(delivered)
