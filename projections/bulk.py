"""Bulk writes and reads of read-model rows: one DBAPI ``executemany`` for many rows, one
``SELECT ... IN`` for many keys. Projections that fold a whole batch of events (the analysis
read models, the catalog's new listings) write through these (bench/README.md)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import DateTime, Table, insert, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

#: Keys per ``SELECT ... IN`` (well under every backend's bound-parameter limit).
IN_CHUNK = 500


def add_to(
    session: Session, table: Table, rows: Iterable[Mapping[str, Any]], sums: list[str]
) -> None:
    """Add each row's ``sums`` columns to the row with the same primary key, inserting it when
    missing: one statement for many rows, on SQLite and MySQL alike."""
    keys = [c.name for c in table.primary_key.columns]

    def build(dialect: str) -> Any:
        if dialect == "sqlite":
            stmt = sqlite.insert(table)
            return stmt.on_conflict_do_update(
                index_elements=keys, set_={c: table.c[c] + stmt.excluded[c] for c in sums}
            )
        mstmt = mysql.insert(table)
        return mstmt.on_duplicate_key_update({c: table.c[c] + mstmt.inserted[c] for c in sums})

    execute_many(session, table, f"add:{','.join(sums)}", build, rows)


def put(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write whole rows: insert each, or replace every non-key column of the row with the same
    primary key. One statement for many rows."""
    keys = [c.name for c in table.primary_key.columns]
    others = [c.name for c in table.columns if c.name not in keys]

    def build(dialect: str) -> Any:
        if dialect == "sqlite":
            stmt = sqlite.insert(table)
            return stmt.on_conflict_do_update(
                index_elements=keys, set_={c: stmt.excluded[c] for c in others}
            )
        mstmt = mysql.insert(table)
        return mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in others})

    execute_many(session, table, "put", build, rows)


def insert_many(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert rows (every column given) in one statement."""
    execute_many(session, table, "insert", lambda _: insert(table), rows)


#: (table, kind, dialect, server version) -> (SQL, its parameters' columns in order)
_COMPILED: dict[tuple[str, str, str, Any], tuple[str, tuple[str, ...]]] = {}


def execute_many(
    session: Session,
    table: Table,
    kind: str,
    build: Callable[[str], Any],
    rows: Iterable[Mapping[str, Any]],
) -> None:
    """Run the statement ``build(dialect name)`` makes for every row, as one DBAPI
    executemany. The SQL is compiled once per table, kind and dialect, and the rows go to the
    driver as plain tuples: SQLAlchemy's per-row parameter processing cost more than the
    database's own work (bench/README.md). Values are what the driver takes as they are, but
    for SQLite timestamps, written in SQLAlchemy's own format."""
    rows = list(rows)
    if not rows:
        return
    dialect = session.get_bind().dialect
    sql, names = _compiled(dialect, table, kind, build)
    get = itemgetter(*names)
    params = [get(row) for row in rows] if len(names) > 1 else [(get(row),) for row in rows]
    if dialect.name == "sqlite":
        stamps = [i for i, n in enumerate(names) if isinstance(table.c[n].type, DateTime)]
        if stamps:
            params = [_sqlite_stamps(p, stamps) for p in params]
    session.connection().exec_driver_sql(sql, params)


def insert_tuples(session: Session, table: Table, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows given as tuples in the table's column order (no timestamp columns): the
    cheapest form for very many small rows, such as search postings."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    sql, names = _compiled(dialect, table, "insert", lambda _: insert(table))
    if names != tuple(c.name for c in table.columns):
        raise ValueError(f"{table.name}: parameters {names} are not in column order")
    session.connection().exec_driver_sql(sql, rows)


def _compiled(
    dialect: Any, table: Table, kind: str, build: Callable[[str], Any]
) -> tuple[str, tuple[str, ...]]:
    """The statement's SQL and its parameters' columns, compiled once. Always positional:
    SQLite's ``?`` is; for PyMySQL's named style a copy of the dialect compiles ``%s``
    instead, which PyMySQL takes with tuples and escapes for a third of a dict's cost."""
    key = (table.name, kind, dialect.name, dialect.server_version_info)
    found = _COMPILED.get(key)
    if found is None:
        if not dialect.positional:
            dialect = copy.copy(dialect)
            dialect.positional, dialect.paramstyle = True, "format"
        compiled = build(dialect.name).compile(dialect=dialect)
        found = (compiled.string, tuple(compiled.positiontup or ()))
        _COMPILED[key] = found
    return found


def _sqlite_stamps(values: tuple[Any, ...], at: list[int]) -> tuple[Any, ...]:
    """The row with its timestamps in SQLAlchemy's SQLite DATETIME format."""
    out = list(values)
    for i in at:
        if isinstance(out[i], datetime):
            out[i] = out[i].strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(out)


def load(session: Session, table: Table, column: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """The rows whose ``column`` is one of ``keys`` (one SELECT per IN_CHUNK keys)."""
    wanted = sorted(set(keys))
    found: list[dict[str, Any]] = []
    for start in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[start : start + IN_CHUNK]
        rows = session.execute(select(table).where(table.c[column].in_(chunk)))
        found.extend(dict(r._mapping) for r in rows)
    return found
