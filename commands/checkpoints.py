"""Recording a signed checkpoint of the event chain (audit/checkpoints.py signs it)."""

from __future__ import annotations

from dataclasses import dataclass

from aggregates.checkpoints import Checkpoint
from commands.bus import Command, Handler, UnitOfWork


@dataclass(frozen=True)
class RecordCheckpoint(Command):
    signed_position: int
    link: str
    signed_at: str
    kid: str
    jws: str


def record_checkpoint(uow: UnitOfWork, cmd: RecordCheckpoint) -> Checkpoint | None:
    """The new checkpoint, or None when this position is signed already."""
    if uow.find(Checkpoint, Checkpoint.id_for(cmd.signed_position)) is not None:
        return None
    checkpoint = Checkpoint.sign(cmd.signed_position, cmd.link, cmd.signed_at, cmd.kid, cmd.jws)
    uow.add(checkpoint)
    return checkpoint


HANDLERS: dict[type, Handler] = {RecordCheckpoint: record_checkpoint}
