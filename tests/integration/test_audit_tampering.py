"""The hash chain catches tampering with the event store, on SQLite and MariaDB: each kind of
edit is named at the right position, a clean store verifies, concurrent writers make one
valid chain, and a store from before the chain is chained by the migration."""

from __future__ import annotations

import json
import multiprocessing
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import make_url

from audit.chain import START, Head, chain, chain_rows
from audit.checkpoints import JWS_TYPE, create_checkpoint, keys_of
from audit.verify import Report, verify_store
from commands.application import EventMeta, ShopledgerApplication, recording_as
from shopledger.bootstrap import Container, _app_env, bootstrap
from shopledger.settings import load_settings
from tests.conftest import DB_PREFIX, MARIADB_ADMIN_URL, _unavailable, make_settings
from tests.support.ledger import HANDLERS, Ledger


def _build(c: Container) -> None:
    """30 ledgers' events (1..60), a checkpoint signing 60 (event 61), 10 more events
    (62..71) and a checkpoint signing 71 (event 72)."""
    with recording_as(EventMeta("test", "test")):
        for i in range(30):
            ledger = Ledger(f"l{i}")
            ledger.credit(i + 1)
            c.app.save(ledger)
        first = create_checkpoint(c)
        assert first.signed is not None and first.signed.position == 60 and first.position == 61
        for i in range(10):
            c.app.save(Ledger(f"m{i}"))
        second = create_checkpoint(c)
        assert second.signed is not None and second.signed.position == 71


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)],
)
def pristine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Container, dict[str, list[dict[str, Any]]]]]:
    """One store per back end for the module (creating every table on MariaDB takes
    seconds); each test gets it back as built (see ``store``)."""
    tmp = tmp_path_factory.mktemp("audit")
    if request.param == "sqlite":
        yield from _pristine(f"sqlite:///{tmp / 'audit.db'}", tmp)
        return
    import pymysql

    server = make_url(MARIADB_ADMIN_URL)
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    try:
        conn = pymysql.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 3306,
            user=server.username or "root",
            password=server.password or "",
        )
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"MariaDB at {server.host}:{server.port or 3306}", exc)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield from _pristine(f"{MARIADB_ADMIN_URL}/{name}?charset=utf8mb4", tmp)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _pristine(url: str, tmp: Path) -> Iterator[tuple[Container, dict[str, list[dict[str, Any]]]]]:
    c = bootstrap(make_settings(url, tmp), handlers=HANDLERS)
    try:
        _build(c)
        with c.engine.connect() as conn:
            saved = {
                "events": [r._asdict() for r in conn.execute(select(events_of(c)))],
                "chain": [r._asdict() for r in conn.execute(select(chain))],
            }
        yield c, saved
    finally:
        c.close()


@pytest.fixture
def store(
    pristine: tuple[Container, dict[str, list[dict[str, Any]]]],
) -> Iterator[Container]:
    c, saved = pristine
    yield c
    with c.engine.begin() as conn:  # undo this test's tampering
        for table, rows in ((chain, saved["chain"]), (events_of(c), saved["events"])):
            conn.execute(delete(table))
            conn.execute(insert(table), rows)


def events_of(c: Container) -> Any:
    return c.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]


def verify(c: Container, **kwargs: Any) -> Report:
    return verify_store(c.engine, events_of(c), keys_of(c.tokens.keys), **kwargs)


def state_at(c: Container, position: int) -> bytes:
    ev = events_of(c)
    with c.engine.connect() as conn:
        return bytes(conn.execute(select(ev.c.state).where(ev.c.id == position)).scalar_one())


def set_state(c: Container, position: int, state: bytes) -> None:
    ev = events_of(c)
    with c.engine.begin() as conn:
        conn.execute(update(ev).where(ev.c.id == position).values(state=state))


def rechain_from(c: Container, position: int) -> None:
    """What an attacker who knows the algorithm (but not the signing key) does after an edit:
    recompute every chain row from ``position`` on."""
    ev = events_of(c)
    with c.engine.begin() as conn:
        before = conn.execute(
            select(chain.c.position, chain.c.link)
            .where(chain.c.position < position)
            .order_by(chain.c.position.desc())
            .limit(1)
        ).first()
        head = Head(int(before[0]), bytes(before[1])) if before else START
        stamps: dict[int, int] = {
            int(p): int(t) for p, t in conn.execute(select(chain.c.position, chain.c.recorded_at))
        }
        rows = conn.execute(
            select(ev.c.id, ev.c.originator_id, ev.c.originator_version, ev.c.topic, ev.c.state)
            .where(ev.c.id >= position)
            .order_by(ev.c.id)
        ).all()
        new: list[dict[str, Any]] = []
        for row in rows:
            event = (int(row[0]), row[1], int(row[2]), row[3], bytes(row[4]))
            (made,) = chain_rows(head, [event], int(stamps[row[0]]))
            new.append(made)
            head = Head(made["position"], made["link"])
        conn.execute(delete(chain).where(chain.c.position >= position))
        conn.execute(insert(chain), new)


def test_a_clean_store_verifies_with_both_checkpoints(store: Container) -> None:
    report = verify(store)
    assert report.ok, report.summary()
    assert (report.checked, report.last, report.checkpoints) == (72, 72, 2)
    assert verify(store, start=30, stop=65).ok


def test_one_changed_byte_of_state_is_found_at_its_position(store: Container) -> None:
    state = bytearray(state_at(store, 17))
    state[len(state) // 2] ^= 0x01
    set_state(store, 17, bytes(state))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (17, "changed")
    assert verify(store, start=18).ok  # the range after it is intact


def test_a_deleted_event_is_missing_at_its_position(store: Container) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(events_of(store)).where(events_of(store).c.id == 23))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (23, "missing")


def test_the_newest_event_deleted_without_its_chain_row_is_missing(store: Container) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(events_of(store)).where(events_of(store).c.id == 72))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (72, "missing")


def test_an_event_deleted_with_its_chain_row_is_found_at_the_next_link(
    store: Container,
) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(events_of(store)).where(events_of(store).c.id == 40))
        conn.execute(delete(chain).where(chain.c.position == 40))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (40, "missing")


def test_an_inserted_event_is_found_at_its_position(store: Container) -> None:
    ev = events_of(store)
    with store.engine.begin() as conn:
        conn.execute(
            insert(ev).values(
                id=73,
                originator_id=uuid.uuid4(),
                originator_version=1,
                topic="tests.support.ledger:Ledger.Opened",
                state=state_at(store, 1),
            )
        )
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (73, "inserted")


def test_two_swapped_events_are_found_at_the_first(store: Container) -> None:
    ev = events_of(store)
    with store.engine.begin() as conn:
        a, b = (
            conn.execute(
                select(ev.c.originator_id, ev.c.originator_version, ev.c.topic, ev.c.state).where(
                    ev.c.id == p
                )
            ).one()
            for p in (5, 9)
        )
        conn.execute(update(ev).where(ev.c.id == 5).values(originator_id=uuid.uuid4()))
        conn.execute(update(ev).where(ev.c.id == 9).values(**a._asdict()))
        conn.execute(update(ev).where(ev.c.id == 5).values(**b._asdict()))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (5, "changed")


def test_an_edited_checkpoint_is_found_at_its_event(store: Container) -> None:
    state = bytearray(state_at(store, 61))
    state[-3] ^= 0xFF
    set_state(store, 61, bytes(state))
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (61, "changed")


def test_a_checkpoint_forged_without_the_key_fails_even_when_the_chain_is_recomputed(
    store: Container,
) -> None:
    fields = json.loads(zlib.decompress(state_at(store, 61)))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(fields["jws"], options={"verify_signature": False})
    header = jwt.get_unverified_header(fields["jws"])
    fields["jws"] = jwt.encode(
        claims, other, algorithm="RS256", headers={"kid": header["kid"], "typ": JWS_TYPE}
    )
    set_state(store, 61, zlib.compress(json.dumps(fields).encode()))
    rechain_from(store, 61)
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (61, "checkpoint")
    assert "signature" in problem.message


def test_history_rewritten_with_its_chain_is_caught_by_the_signed_checkpoint(
    store: Container,
) -> None:
    state = bytearray(state_at(store, 12))
    state[len(state) // 2] ^= 0x01
    set_state(store, 12, bytes(state))
    rechain_from(store, 12)  # every digest and link now agree with the forged event
    problem = verify(store).problem
    assert problem is not None and (problem.position, problem.kind) == (60, "checkpoint")


def _writer(url: str, n: int, errors: Any) -> None:
    try:
        settings = load_settings(database_url=url)
        app = ShopledgerApplication(env=_app_env(settings))
        with recording_as(EventMeta("test", "test")):
            for i in range(n):
                ledger = Ledger(f"w{i}")
                if i % 2:
                    ledger.credit(1)
                app.save(ledger)
        app.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(repr(exc))


@pytest.mark.slow
def test_eight_concurrent_writer_processes_make_one_valid_chain(store: Container) -> None:
    url = store.settings.resolved_database_url
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, 12, errors)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert errors.empty(), errors.get()
    assert all(p.exitcode == 0 for p in procs)
    report = verify(store)
    assert report.ok, report.summary()
    with store.engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(events_of(store))).scalar()
        rows = conn.execute(select(func.count()).select_from(chain)).scalar()
    assert events == rows == report.checked == 72 + 8 * (12 + 6)


def test_a_store_from_before_the_chain_is_chained_by_the_migration(store: Container) -> None:
    recorder: Any = store.app.recorder
    ev = events_of(store)
    with store.engine.begin() as conn:  # the store as a version without the chain left it
        conn.execute(delete(chain))
        conn.execute(delete(ev).where(ev.c.id.in_([61, 72])))  # (it had no checkpoints)
    recorder.chain_complete = False  # what a process started on such a store knows
    try:
        store.app.save(Ledger("during"))  # appended before the migration: left unchained
        problem = verify(store).problem
        assert problem is not None and (problem.position, problem.kind) == (1, "inserted")
        assert recorder.unchained_count() == 71
        seen: list[tuple[int, int]] = []
        chained = recorder.chain_unchained(batch=30, on_progress=lambda p, h: seen.append((p, h)))
        assert chained == 71
        assert len(seen) == 3 and seen[-1][0] == seen[-1][1]
        store.app.save(Ledger("after"))  # chained by its own append again
        report = verify(store)
        assert report.ok and report.checked == 72, report.summary()
        assert recorder.chain_unchained() == 0
    finally:
        recorder.chain_complete = True
