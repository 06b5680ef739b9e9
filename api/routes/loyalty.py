"""Loyalty: the caller's points balance, ledger and membership level."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import CurrentUser
from api.deps import ContainerDep, PageDep, reads
from api.openapi import documented
from api.responses import PointsSummary
from queries.loyalty import points_of

router = APIRouter(tags=["loyalty"])


@router.get(
    "/api/users/me/points",
    dependencies=[Depends(reads("loyalty"))],
    response_model=None,
    responses=documented(PointsSummary),
)
def my_points(principal: CurrentUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """The caller's points balance, membership level and points ledger (newest first).

    Points are earned on delivered orders, spent at checkout (``pointsToRedeem``), given back
    when that order is cancelled, expires or is refunded, and taken back by refunds of the
    orders they were earned on."""
    rules = container.settings.loyalty_rules()
    return points_of(container.engine, principal.account_id, page, rules)
