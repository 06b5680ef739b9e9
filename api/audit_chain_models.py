"""Response bodies of the tamper-evident log's routes (api/routes/audit_chain.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas import ResponseBody


class AuditCheckpoint(ResponseBody):
    position: int = Field(description="the position of the checkpoint's own event")
    signed_position: int = Field(description="the chain position it signs")
    link: str = Field(description="the chain's link at signedPosition (hex SHA-256)")
    signed_at: str
    kid: str = Field(description="the signing key, as published in /.well-known/jwks.json")
    jws: str = Field(
        description="compact RS256 JWS (header typ shopledger-checkpoint+jwt) whose claims are"
        " position, link, signedAt: verify it with the JWKS, offline"
    )


class AuditCheckpointList(ResponseBody):
    checkpoints: list[AuditCheckpoint]
    next: int | None = Field(description="pass as ?after= for the next page; null on the last")


class AuditCheckpointResult(ResponseBody):
    created: bool = Field(description="false: nothing was appended since the last checkpoint")
    checkpoint: AuditCheckpoint | None


class AuditVerifyJob(ResponseBody):
    job_id: str
    status: Literal["queued", "running", "passed", "failed", "error"]
    start: int | None = Field(alias="from", description="first position checked (null: 1)")
    stop: int | None = Field(alias="to", description="last position checked (null: the head)")
    checked: int = Field(description="events whose digest and link were recomputed so far")
    position: int = Field(description="the last position verified so far")
    first_bad_position: int | None = Field(
        description="failed: the first position that differs, is missing or was inserted"
    )
    problem: Literal["changed", "missing", "inserted", "link", "checkpoint"] | None
    message: str | None
    checkpoints: int = Field(description="signed checkpoints verified")
    queued_at: str
    started_at: str | None
    finished_at: str | None
    status_url: str
