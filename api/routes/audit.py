"""Audit: the operation log (操作日誌, seeds/000), for auditors and admins.

Every event in the store with who caused it and when, filterable, paged by position (keyset).
It carries no event payload, so no secret can appear in it (see projections/operation_log.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, Field

from api.auth import AuditReader
from api.deps import ContainerDep, reads
from api.errors import ApiError
from api.openapi import documented
from api.schemas import ResponseBody
from queries import operation_log as q

router = APIRouter(prefix="/api/audit", tags=["audit"])


class LoggedEvent(ResponseBody):
    """One stored event as the operation log shows it: its facts, never its payload."""

    position: int = Field(ge=1, description="global position in the event store (the cursor)")
    at: datetime | None = Field(description="when the event happened (ISO 8601, UTC)")
    type: str = Field(description="the event class, e.g. Order.Placed", examples=["Order.Placed"])
    aggregate_type: str = Field(description="the aggregate class, e.g. Order")
    aggregate_id: str
    version: int = Field(ge=1, description="the aggregate's version after this event")
    actor: str | None = Field(
        description="who caused it: a user id, system:<rule>, or anonymous (sign-up, login)"
    )
    correlation_id: str | None = Field(description="the request's X-Request-ID")


class OperationLogPage(ResponseBody):
    events: list[LoggedEvent]
    next: int | None = Field(
        description="pass as ?after= for the next page; null when this page is the last so "
        "far (to follow new events, ask again with after= the last position you saw)"
    )


def _problem(field: str, message: str) -> ApiError:
    problem = {"field": field, "problem": "NOT_ALLOWED_VALUE", "message": message}
    return ApiError(400, "VALIDATION_ERROR", message, {"field": field, "errors": [problem]})


@router.get(
    "/events",
    dependencies=[Depends(reads("operation_log"))],
    response_model=None,
    responses=documented(OperationLogPage, errors={403: "FORBIDDEN"}),
)
def operation_log(
    _: AuditReader,
    container: ContainerDep,
    actor: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="a user id, or system:<rule>"),
    ] = None,
    aggregate_id: Annotated[UUID | None, Query(alias="aggregateId")] = None,
    event_type: Annotated[
        str | None,
        Query(alias="type", min_length=1, max_length=100, description="e.g. Order.Placed"),
    ] = None,
    aggregate_type: Annotated[
        str | None,
        Query(alias="aggregateType", min_length=1, max_length=60, description="e.g. Order"),
    ] = None,
    correlation_id: Annotated[
        str | None, Query(alias="correlationId", min_length=1, max_length=100)
    ] = None,
    start: Annotated[
        AwareDatetime | None, Query(alias="from", description="at or after (with offset)")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="before (with offset)")
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=10**18, description="only events after this position")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=q.MAX_LIMIT)] = q.DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Every event in the store, oldest first: the operation log (auditors and admins).

    Position, time, event type, aggregate type and id, version, actor and correlation id of
    each event, never its data. Filters combine (AND): ``actor``, ``aggregateId``, ``type``,
    ``aggregateType``, ``correlationId``, ``from`` (inclusive) and ``to`` (exclusive). Paged
    by position: ``limit`` events (default 100, at most 1000) after ``after``; the answer's
    ``next`` is the ``after`` of the following page, null on the last one."""
    if start is not None and end is not None and end <= start:
        raise _problem("to", "to must be later than from")
    criteria = q.LogFilter(
        actor=actor,
        aggregate_id=None if aggregate_id is None else str(aggregate_id),
        event_type=event_type,
        aggregate_type=aggregate_type,
        correlation_id=correlation_id,
        start=start,
        end=end,
    )
    return q.operation_log(container.engine, criteria, after, limit)
