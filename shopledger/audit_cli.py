"""``shopledger audit chain|verify|checkpoint|export``: the tamper-evident log's commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopledger.bootstrap import Container


def add_parser(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="the tamper-evident event log: chain, verify, checkpoint, export"
    )
    asub = audit.add_subparsers(dest="action", required=True)
    chain = asub.add_parser(
        "chain", help="chain the events recorded before the chain existed (one-off, resumable)"
    )
    chain.add_argument("--batch", type=int, default=5000, help="events per transaction")
    verify = asub.add_parser(
        "verify",
        help="recompute the hash chain and check every signed checkpoint (exit 1 on a problem)",
    )
    verify.add_argument("--from", dest="start", type=int, metavar="POS")
    verify.add_argument("--to", dest="stop", type=int, metavar="POS")
    verify.add_argument(
        "--file", type=Path, metavar="F", help="verify an export instead (no database needed)"
    )
    verify.add_argument(
        "--public-key",
        type=Path,
        metavar="JWKS_OR_PEM",
        help="with --file: the service's public key (its /.well-known/jwks.json, or a PEM)",
    )
    asub.add_parser("checkpoint", help="sign the chain's head now (no-op if it has not moved)")
    export = asub.add_parser(
        "export", help="write events with their links and covering checkpoints as JSON Lines"
    )
    export.add_argument("--order", metavar="ID", help="one aggregate's (an order's) events")
    export.add_argument("--from", dest="start", type=int, metavar="POS")
    export.add_argument("--to", dest="stop", type=int, metavar="POS")
    export.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")


def needs_database(args: argparse.Namespace) -> bool:
    return not (args.action == "verify" and args.file is not None)


def check_arguments(args: argparse.Namespace) -> str | None:
    """A one-line complaint about the arguments, or None."""
    for name in ("start", "stop"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            return f"--{'from' if name == 'start' else 'to'} must be a position (1 or more)"
    if getattr(args, "start", None) and getattr(args, "stop", None) and args.start > args.stop:
        return "--from must not be after --to"
    if args.action == "verify":
        if args.file is not None and args.public_key is None:
            return "--file needs --public-key (the service's JWKS or PEM public key)"
        if args.file is None and args.public_key is not None:
            return "--public-key goes with --file"
        if args.file is not None and (args.start or args.stop):
            return "--from/--to do not apply to --file"
    if args.action == "export":
        if (args.order is None) == (args.start is None and args.stop is None):
            return "give either --order ID or --from POS --to POS"
        if args.order is None and (args.start is None or args.stop is None):
            return "--from and --to go together"
    if args.action == "chain" and args.batch < 1:
        return "--batch must be 1 or more"
    return None


def _progress(label: str) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def verify_file(args: argparse.Namespace) -> int:
    from audit.checkpoints import load_public_keys
    from audit.export import ExportError, verify_export

    try:
        keys = load_public_keys(args.public_key)
    except (OSError, ValueError) as exc:
        print(f"shopledger: cannot read the public key: {exc}", file=sys.stderr)
        return 2
    try:
        with args.file.open("rb") as fh:
            result = verify_export(fh, keys)
    except OSError as exc:
        print(f"shopledger: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(f"shopledger: FAILED: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def run(container: Container, args: argparse.Namespace) -> int:
    if args.action == "chain":
        return _chain(container, args.batch)
    if args.action == "verify":
        return _verify(container, args.start, args.stop)
    if args.action == "checkpoint":
        return _checkpoint(container)
    return _export(container, args)


def _chain(container: Container, batch: int) -> int:
    recorder: Any = container.app.recorder
    pending = recorder.unchained_count()
    if pending == 0:
        print("every event is chained already")
        return 0
    with _progress("chaining events") as bar:
        task = bar.add_task("chain", total=container.head_position() or 1)

        def on_progress(position: int, head: int) -> None:
            bar.update(task, completed=position, total=max(head, 1))

        done = recorder.chain_unchained(batch, on_progress)
    print(f"chained {done} events up to position {container.head_position()}")
    return 0


def _verify(container: Container, start: int | None, stop: int | None) -> int:
    from audit.checkpoints import keys_of
    from audit.verify import verify_store

    recorder: Any = container.app.recorder
    with _progress("verifying the event chain") as bar:
        task = bar.add_task("verify", total=stop or container.head_position() or 1)

        def on_progress(position: int, last: int) -> None:
            bar.update(task, completed=position, total=max(last, 1))

        report = verify_store(
            container.engine,
            recorder.events_record_cls.__table__,
            keys_of(container.tokens.keys),
            start=start,
            stop=stop,
            on_progress=on_progress,
        )
    if report.ok:
        rate = report.checked / report.seconds if report.seconds > 0 else 0.0
        print(f"{report.summary()} in {report.seconds:.1f} s ({rate:,.0f} events/s)")
        return 0
    print(f"shopledger: FAILED at {report.summary()}", file=sys.stderr)
    return 1


def _checkpoint(container: Container) -> int:
    from audit.checkpoints import create_checkpoint

    result = create_checkpoint(container)
    if not result.created or result.signed is None:
        print("no new checkpoint: nothing was appended since the last one")
        return 0
    s = result.signed
    print(
        f"signed position {s.position} (link {s.link}) at {s.signed_at} with key {s.kid};"
        f" recorded at position {result.position}"
    )
    return 0


def _export(container: Container, args: argparse.Namespace) -> int:
    from uuid import UUID

    from audit.export import ExportError, export_events

    order: UUID | None = None
    if args.order is not None:
        try:
            order = UUID(args.order)
        except ValueError:
            print(f"shopledger: --order {args.order!r} is not an id", file=sys.stderr)
            return 2
    try:
        if args.out is None:
            summary = export_events(
                container, sys.stdout.buffer, order=order, start=args.start, stop=args.stop
            )
            sys.stdout.flush()
        else:
            with args.out.open("wb") as fh:
                summary = export_events(
                    container, fh, order=order, start=args.start, stop=args.stop
                )
    except ExportError as exc:
        print(f"shopledger: {exc}", file=sys.stderr)
        return 1
    print(f"shopledger: {summary}", file=sys.stderr)
    return 0
