"""The tamper-evident event log (admins and auditors): signed checkpoints of the hash chain
and verification jobs. The operation log (`GET /api/audit/events`) lives in audit.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from api.audit_chain_models import (
    AuditCheckpointList,
    AuditCheckpointResult,
    AuditVerifyJob,
)
from api.auth import AdminUser, Principal, require_role
from api.deps import ContainerDep, Once, event_meta, reads
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented
from audit.checkpoints import create_checkpoint
from audit.jobs import VerificationBusy, VerifyStatus, verify_jobs_for
from queries.audit_checkpoints import list_checkpoints

router = APIRouter(tags=["audit"])

AuditorOrAdmin = Annotated[Principal, Depends(require_role("admin", "auditor"))]
MAX_POSITION = 2**62


@router.get(
    "/api/audit/checkpoints",
    dependencies=[Depends(reads("audit_checkpoints"))],
    response_model=None,
    responses=documented(AuditCheckpointList),
)
def checkpoints(
    _: AuditorOrAdmin,
    container: ContainerDep,
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Signed checkpoints of the event chain, oldest first (admin, auditor).

    Keyset pages by position: pass the answer's ``next`` as ``after``. Each carries its
    compact JWS, verifiable offline with the key of ``/.well-known/jwks.json``."""
    return list_checkpoints(container.engine, after, limit)


@router.post(
    "/api/audit/checkpoints",
    status_code=201,
    response_model=None,
    responses={
        **documented(AuditCheckpointResult, status=201),
        **documented(AuditCheckpointResult, description="nothing appended since the last one"),
    },
    openapi_extra=IDEMPOTENT,
)
def sign_checkpoint(request: Request, _: AdminUser, container: ContainerDep) -> Response:
    """Sign the event chain's head now (admin).

    201 with the new checkpoint; 200 with ``created: false`` when nothing but the last
    checkpoint was appended since it (the timed rule does this every
    SHOPLEDGER_AUDIT_CHECKPOINT_INTERVAL)."""
    once = Once(request, container, None)
    if once.replay is not None:
        return once.replay

    def finalize(session: Any, checkpoint: Any, position: int | None) -> None:
        if checkpoint is not None and position is not None:
            body = {"created": True, "checkpoint": _checkpoint(checkpoint, position)}
            once.finalize(lambda _: (201, body))(session, checkpoint, position)

    with once:
        result = create_checkpoint(container, event_meta(request), finalize)
        if not result.created or result.position is None:
            if once.claim is not None:  # nothing to replay: the next request decides anew
                container.idempotency.release(once.claim)
            return JSONResponse({"created": False, "checkpoint": None}, status_code=200)
    return once.response(result.position)


def _checkpoint(checkpoint: Any, position: int) -> dict[str, Any]:
    return {
        "position": position,
        "signedPosition": checkpoint.signed_position,
        "link": checkpoint.link,
        "signedAt": checkpoint.signed_at,
        "kid": checkpoint.kid,
        "jws": checkpoint.jws,
    }


def _job(request: Request, status: VerifyStatus) -> dict[str, Any]:
    return {
        "jobId": status.job_id,
        "status": status.status,
        "from": status.start,
        "to": status.stop,
        "checked": status.checked,
        "position": status.position,
        "firstBadPosition": status.first_bad_position,
        "problem": status.problem,
        "message": status.message,
        "checkpoints": status.checkpoints,
        "queuedAt": status.queued_at,
        "startedAt": status.started_at,
        "finishedAt": status.finished_at,
        "statusUrl": str(request.url_for("verify_status", job_id=status.job_id).path),
    }


@router.get(
    "/api/audit/verify",
    status_code=202,
    response_model=None,
    responses=documented(
        AuditVerifyJob, status=202, errors={400: "VALIDATION_ERROR", 409: "CONFLICT"}
    ),
)
def start_verify(
    request: Request,
    _: AuditorOrAdmin,
    container: ContainerDep,
    start: Annotated[int | None, Query(alias="from", ge=1, le=MAX_POSITION)] = None,
    stop: Annotated[int | None, Query(alias="to", ge=1, le=MAX_POSITION)] = None,
) -> JSONResponse:
    """Start verifying the event chain over a range, in the background (admin, auditor).

    Recomputes every digest and link from ``from`` (default 1) to ``to`` (default the head)
    and checks every signed checkpoint in it, as `shopledger audit verify` does. Answers 202
    with the job; poll ``statusUrl``. Embedded mode runs one at a time (409 meanwhile); with
    Redis, jobs queue for the workers."""
    if start is not None and stop is not None and start > stop:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "from must not be after to",
            {"errors": [{"field": "from", "problem": "AFTER_TO"}]},
        )
    try:
        status = verify_jobs_for(request.app.state, container).start(start, stop)
    except VerificationBusy as busy:
        raise ApiError(
            409,
            "CONFLICT",
            "a verification is running already: wait for it (embedded mode runs one at a time)",
            {"jobId": busy.job_id},
        ) from None
    body = _job(request, status)
    return JSONResponse(body, status_code=202, headers={"Location": body["statusUrl"]})


@router.get(
    "/api/audit/verify/{job_id}",
    name="verify_status",
    response_model=None,
    responses=documented(AuditVerifyJob, errors={404: "NOT_FOUND"}),
)
def verify_status(
    job_id: str, request: Request, _: AuditorOrAdmin, container: ContainerDep
) -> dict[str, Any]:
    """A verification job's status (admin, auditor): queued, running, passed or failed (with
    the first bad position and what is wrong there), or error."""
    status = verify_jobs_for(request.app.state, container).get(job_id[:200])
    if status is None:
        raise ApiError(404, "NOT_FOUND", "verification job not found")
    return _job(request, status)
