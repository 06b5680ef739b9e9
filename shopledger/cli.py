"""The ``shopledger`` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from shopledger import audit_cli
from shopledger.bootstrap import Container, StartupError, bootstrap
from shopledger.logging import configure_logging
from shopledger.settings import Settings, SettingsError, load_settings

log = logging.getLogger("shopledger.cli")


def _version() -> str:
    try:
        return importlib.metadata.version("shopledger")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopledger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shopledger {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the HTTP API (embedded mode without Redis)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--ssl-certfile",
        type=Path,
        metavar="PATH",
        help="serve HTTPS with this PEM certificate (default: SHOPLEDGER_SSL_CERTFILE)",
    )
    serve.add_argument(
        "--ssl-keyfile",
        type=Path,
        metavar="PATH",
        help="the certificate's PEM private key (default: SHOPLEDGER_SSL_KEYFILE)",
    )

    worker = sub.add_parser(
        "worker",
        help="run an RQ worker with its scheduler: timed rules and mail (needs SHOPLEDGER_REDIS_URL)",
    )
    worker.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    worker.add_argument("--name", help="worker name shown by `rq info` (default: RQ's)")
    worker.add_argument(
        "--without-scheduler",
        action="store_true",
        help="do not run RQ's scheduler here (scheduled firings then wait for the sweep)",
    )

    projections = sub.add_parser("projections", help="run, rebuild or inspect projections")
    psub = projections.add_subparsers(dest="action", required=True)
    run = psub.add_parser("run", help="keep projections up to date until stopped")
    run.add_argument("names", nargs="*", metavar="NAME", help="projections to run (default: all)")
    rebuild = psub.add_parser("rebuild", help="replay a projection from zero and swap it in")
    rebuild.add_argument("name", metavar="NAME")
    psub.add_parser("status", help="print each projection's position and lag")

    admin = sub.add_parser(
        "create-admin", help="create an admin account (idempotent for one email)"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--username", help="default: the email's local part")

    seed = sub.add_parser(
        "seed-demo", help="fill the database with a demo shop (sellers, products, orders)"
    )
    seed.add_argument("--orders", type=int, default=40, help="how many orders (default 40)")
    seed.add_argument(
        "--seed", type=int, default=2026, help="another seed adds another demo shop (default 2026)"
    )
    audit_cli.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "audit":
        problem = audit_cli.check_arguments(args)
        if problem is not None:
            print(f"shopledger: {problem}", file=sys.stderr)
            return 2
        if not audit_cli.needs_database(args):  # an export, on any machine
            return audit_cli.verify_file(args)
    overrides: dict[str, object] = {}
    if args.command == "serve":
        tls = _tls_overrides(args.ssl_certfile, args.ssl_keyfile)
        if isinstance(tls, str):
            print(f"shopledger: {tls}", file=sys.stderr)
            return 2
        overrides.update(tls)
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"shopledger: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.resolved_log_format)
    try:
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "worker" and settings.redis_url is None:
            print(
                "shopledger: the worker needs SHOPLEDGER_REDIS_URL (without Redis, `shopledger serve`"
                " runs the timed rules and mail itself)",
                file=sys.stderr,
            )
            return 2
        if args.command == "worker" or getattr(args, "action", None) == "run":
            _announce_database(settings)
            container = _bootstrap_patiently(settings)
        else:
            container = bootstrap(settings)
            _announce_database(settings)
    except StartupError as exc:
        print(f"shopledger: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "create-admin":
            return _create_admin(container, args.email, args.password, args.username)
        if args.command == "seed-demo":
            return _seed_demo(container, args.orders, args.seed)
        if args.command == "worker":
            return _worker(container, args.burst, not args.without_scheduler, args.name)
        if args.command == "audit":
            return audit_cli.run(container, args)
        if args.action == "run":
            return _projections_run(container, args.names)
        if args.action == "rebuild":
            return _projections_rebuild(container, args.name)
        return _projections_status(container)
    finally:
        container.close()


def database_label(settings: Settings) -> str:
    """The database a command uses, for people: any password masked, a SQLite file as an
    absolute path (a relative one depends on the directory the command runs in)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(settings.resolved_database_url)
    except Exception:  # noqa: BLE001 - validated already; only for a message
        return "<unparseable url>"
    database = url.database
    if (
        url.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        url = url.set(database=str(Path(database).resolve()))
    return url.render_as_string(hide_password=True)


def _announce_database(settings: Settings) -> None:
    """The first line of every command (on stderr, so stdout stays the command's answer)."""
    print(f"shopledger: database {database_label(settings)}", file=sys.stderr, flush=True)


def _bootstrap_patiently(settings: Settings) -> Container:
    """``bootstrap`` for the long-running processes (worker, projector): a database that
    cannot be reached yet (down, restarting, not created yet) is waited for with a capped
    backoff, logged once when the wait starts and once when it ends; any other start-up
    problem stops the process as usual."""
    import time

    from commands.reachability import Outage, unreachable

    outage = Outage("the database", log, settings.reconnect_max_delay.total_seconds())
    while True:
        try:
            container = bootstrap(settings)
        except StartupError as exc:
            if not unreachable(exc):
                raise
            time.sleep(outage.down(str(exc)))
            continue
        outage.up()
        return container


def _tls_overrides(certfile: Path | None, keyfile: Path | None) -> dict[str, object] | str:
    """``--ssl-certfile``/``--ssl-keyfile`` as settings overrides (a flag wins over its
    environment variable), or a one-line complaint when only one of the pair is given."""
    flags = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    given = {name: value for name, value in flags.items() if value is not None}
    if len(given) == 1:
        (name,) = given
        other = "ssl_keyfile" if name == "ssl_certfile" else "ssl_certfile"
        if not os.environ.get(f"SHOPLEDGER_{other.upper()}"):
            return (
                "--ssl-certfile and --ssl-keyfile go together (give both, or neither); "
                f"--{other.replace('_', '-')} is missing"
            )
    return dict(given)


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from api.app import create_app

    container = bootstrap(settings)
    _announce_database(settings)
    app = create_app(container)
    scheme = "https" if settings.https else "http"
    log.info(
        "serving",
        extra={
            "url": f"{scheme}://{host}:{port}",
            "mode": "embedded" if settings.embedded else "scaled",
            "projectionsInProcess": settings.projections_in_process,
            "mailInProcess": settings.mail_in_process,
            "rulesInProcess": settings.embedded and settings.projections_in_process,
        },
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Which proxies' X-Forwarded-For/-Proto to believe is the app's decision
        # (SHOPLEDGER_TRUSTED_PROXIES); uvicorn would otherwise trust 127.0.0.1's on its own.
        proxy_headers=False,
        ssl_certfile=None if settings.ssl_certfile is None else str(settings.ssl_certfile),
        ssl_keyfile=None if settings.ssl_keyfile is None else str(settings.ssl_keyfile),
    )
    return 0


def _worker(container: Container, burst: bool, with_scheduler: bool, name: str | None) -> int:
    from workers.worker import run_worker

    return run_worker(container, burst=burst, with_scheduler=with_scheduler, name=name)


def _projections_run(container: Container, names: list[str]) -> int:
    try:
        runner = container.runner(names or None)
    except KeyError as exc:
        print(f"shopledger: {exc.args[0]}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()
        runner.stop(timeout=0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    container.wakeup.listen()
    log.info("projections running", extra={"projections": [w.name for w in runner.workers]})
    runner.run()
    return 0


def _projections_rebuild(container: Container, name: str) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from projections.rebuild import RebuildError, rebuild

    if name not in container.projections:
        print(
            f"shopledger: unknown projection {name!r}; known: {', '.join(container.projections)}",
            file=sys.stderr,
        )
        return 2
    with Progress(
        TextColumn(f"rebuilding {name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("rebuild", total=container.head_position() or 1)

        def on_progress(position: int, head: int) -> None:
            bar.update(task, completed=position, total=max(head, 1))

        try:
            report = rebuild(
                container.app, container.projections[name], container.locks, on_progress=on_progress
            )
        except RebuildError as exc:
            print(f"shopledger: {exc}", file=sys.stderr)
            return 1
        bar.update(task, completed=max(report.position, 1), total=max(report.position, 1))
    print(
        f"rebuilt {name}: {report.events} events up to position {report.position}"
        f" in {report.seconds:.1f} s"
    )
    return 0


def _projections_status(container: Container) -> int:
    from rich.console import Console
    from rich.table import Table

    from queries.event_stats import event_counts

    head = container.head_position()
    table = Table(title=f"projections (head position {head})")
    for column in ("projection", "position", "lag"):
        table.add_column(column, justify="left" if column == "projection" else "right")
    for name, position in sorted(container.positions().items()):
        table.add_row(name, str(position), str(head - position))
    console = Console()
    console.print(table)
    counts = event_counts(container.engine)
    if counts:
        by_type = Table(title="events by type (from event_stats)")
        for column in ("event type", "count", "last position", "last at (UTC)"):
            by_type.add_column(column, justify="left" if column == "event type" else "right")
        for c in counts:
            by_type.add_row(
                c.event_type,
                str(c.count),
                str(c.last_position),
                f"{c.last_at:%Y-%m-%d %H:%M:%S}" if c.last_at else "",
            )
        console.print(by_type)
    return 0


def _seed_demo(container: Container, orders: int, seed: int) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shopledger.seed import PASSWORD, AlreadySeeded, seed_demo, steps

    if not 0 <= orders <= 10_000:
        print("shopledger: --orders must be between 0 and 10000", file=sys.stderr)
        return 2
    with Progress(
        TextColumn("seeding {task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("", total=steps(orders))
        try:
            report = seed_demo(
                container,
                orders=orders,
                seed=seed,
                on_step=lambda what: bar.update(task, advance=1, description=what[:40]),
            )
        except AlreadySeeded as exc:
            print(f"shopledger: {exc}", file=sys.stderr)
            return 1
    print(
        f"demo shop ready: {report.products} products, {sum(report.orders.values())} orders "
        f"({', '.join(f'{k.lower()} {v}' for k, v in sorted(report.orders.items()))}),"
        f" {report.reviews} reviews"
    )
    print(f"every demo account's password: {PASSWORD}")
    print(f"  admin:   {report.admin_email}")
    print(f"  sellers: {', '.join(report.sellers)}")
    print(f"  buyers:  {', '.join(report.buyers[:3])}, ... ({len(report.buyers)} in all)")
    return 0


def _create_admin(container: Container, email: str, password: str, username: str | None) -> int:
    """Register a verified admin, or make the existing account with that email an admin.

    Running it again for the same email changes nothing (the password is left as it is)."""
    from uuid import uuid4

    from aggregates.accounts import check_password_policy, normalize_email, normalize_username
    from aggregates.errors import DomainError
    from commands.accounts import EnsureAdmin, Register
    from commands.application import EventMeta

    try:
        address = normalize_email(email)
        name = username or address.split("@", 1)[0]
        key = normalize_username(name)
        check_password_policy(password, email=address, username=name)
    except DomainError as exc:
        print(f"shopledger: {exc.message}", file=sys.stderr)
        return 2
    command = EnsureAdmin(
        Register(
            account_id=uuid4(),
            email=address,
            username=name,
            username_key=key,
            password_hash=container.passwords.hash(password),
            display_name=name,
            phone=None,
            verification=None,
            role="admin",
            email_verified=True,
        )
    )
    try:
        created, account = container.bus.execute(
            command, EventMeta("system:create-admin", "cli")
        ).result
    except DomainError as exc:
        print(f"shopledger: {exc.message}", file=sys.stderr)
        return 1
    if created:
        print(f"created admin {account.email} (userId {account.id})")
    else:
        print(
            f"{account.email} already exists (userId {account.id}): it is an active, verified admin; "
            "password unchanged"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
