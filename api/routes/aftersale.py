"""After-sale: returns and disputes of an order, and sellers' dispute records for admins.

Returns: the buyer asks (within the return window after delivery), the seller approves or
rejects, the buyer ships back, the seller receives into a warehouse (stock RETURN movement) and
the items' refund is requested on the order. Disputes: either side opens one, both add
statements, an admin resolves it; a refund resolution is requested on the order. A refund by
card is paid back by the gateway after the commit, as for ``POST .../refunds``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field, StrictInt

from aggregates.disputes import Dispute as DisputeAggregate
from aggregates.disputes import SellerDisputeRecord as SellerRecordAggregate
from aggregates.returns import ReturnRequest
from api.aftersale_models import (
    Dispute,
    DisputeList,
    DisputeStatus,
    Resolution,
    Return,
    ReturnList,
    ReturnStatus,
    SellerDisputeRecord,
    SellerDisputeRecordList,
)
from api.auth import AdminUser, CurrentUser, Principal, SellerOrAdmin
from api.deps import (
    ContainerDep,
    Once,
    PageDep,
    event_meta,
    path_id,
    reads,
    request_fingerprint_body,
    run_command,
)
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.routes.catalog import MoneyBody
from api.routes.payments import parse_money, settle_refund_with_gateway
from api.routes.reviews import Images
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.disputes import AddStatement, ClearSellerFlag, OpenDispute, ResolveDispute
from commands.orders import PendingRefund
from commands.returns import DecideReturn, ReceiveReturn, RequestReturn, ShipBackReturn
from queries import aftersale as q
from queries import orders as orders_q
from shopledger.bootstrap import Container

router = APIRouter(tags=["after-sale"])
READS = [Depends(reads("aftersale"))]
READS_WITH_ORDERS = [Depends(reads("aftersale", "orders"))]


# --- bodies ---------------------------------------------------------------------------------
class ReturnItemBody(RequestBody):
    order_item_id: str = Field(min_length=1, max_length=80)
    quantity: StrictInt = Field(ge=1, le=1_000_000)


class ReturnBody(RequestBody):
    model_config = examples(
        {
            "items": [{"orderItemId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10-1", "quantity": 1}],
            "reason": "尺寸不合",
            "images": ["https://img.example.com/return/1.jpg"],
        }
    )
    items: list[ReturnItemBody] = Field(min_length=1, max_length=100)
    reason: MultilineText = Field(min_length=1, max_length=500)
    images: Images = Field(default_factory=list)


class ApproveBody(RequestBody):
    model_config = examples({"note": "請於 7 日內寄回，運費由本店負擔"})
    note: MultilineText = Field(default="", max_length=500)


class RejectBody(RequestBody):
    model_config = examples({"reason": "商品已拆封使用，不符合退貨條件"})
    reason: MultilineText = Field(min_length=1, max_length=500)


class ShipBackBody(RequestBody):
    model_config = examples({"carrier": "BLACK_CAT", "trackingNumber": "TC123456789"})
    carrier: Text = Field(min_length=1, max_length=50)
    tracking_number: Text = Field(min_length=1, max_length=64)


class ReceiveBody(RequestBody):
    model_config = examples({"warehouseId": "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"})
    warehouse_id: str = Field(min_length=1, max_length=64)


class DisputeBody(RequestBody):
    model_config = examples(
        {"reason": "商品與描述不符", "text": "收到的顏色是藍色，頁面寫的是紅色。"},
        {"reason": "未收到商品", "text": "物流顯示已送達但我沒有收到。", "sellerId": "..."},
    )
    reason: MultilineText = Field(min_length=1, max_length=200)
    text: MultilineText = Field(min_length=1, max_length=2_000)
    seller_id: str | None = Field(
        default=None,
        max_length=64,
        description="which seller the dispute is with; required when the order has several",
    )


class StatementBody(RequestBody):
    model_config = examples({"text": "附上開箱照片，外盒完好但內容物破損。"})
    text: MultilineText = Field(min_length=1, max_length=2_000)


class ResolveBody(RequestBody):
    model_config = examples(
        {"resolution": "REFUND_FULL", "note": "賣家未能提供出貨證明"},
        {
            "resolution": "REFUND_PARTIAL",
            "amount": {"value": 200, "currency": "TWD"},
            "note": "商品有輕微瑕疵，部分退款",
        },
        {"resolution": "REJECTED", "note": "物流紀錄顯示已簽收"},
    )
    resolution: Resolution
    amount: MoneyBody | None = Field(default=None, description="REFUND_PARTIAL only")
    note: MultilineText = Field(min_length=1, max_length=1_000)


class ClearFlagBody(RequestBody):
    model_config = examples({"note": "已與賣家聯繫，改善出貨流程"})
    note: MultilineText = Field(default="", max_length=1_000)


# --- answers from the saved aggregates (read-your-writes) -----------------------------------
def _refund_fields(refund: dict[str, Any] | None, status: str | None) -> dict[str, Any]:
    if refund is None:
        return {"refund_id": None, "refund_amount": None, "refund_status": None}
    return {
        "refund_id": refund["refundId"],
        "refund_amount": refund["amount"],
        "refund_status": status or refund["status"],
    }


def return_document(request: ReturnRequest, refund_status: str | None = None) -> dict[str, Any]:
    """The return as the read model will show it (queries/aftersale.py's one shape)."""
    row = SimpleNamespace(
        return_id=str(request.id),
        order_id=request.order_id,
        order_number=request.order_number,
        buyer_id=request.buyer_id,
        seller_id=request.seller_id,
        status=request.status,
        items=json.dumps(request.items),
        reason=request.reason,
        images=json.dumps(request.images),
        decision_note=request.decision_note,
        carrier=request.carrier,
        tracking_number=request.tracking_number,
        warehouse_id=request.warehouse_id,
        requested_at=request.requested_at,
        updated_at=request.updated_at,
        **_refund_fields(request.refund, refund_status),
    )
    return q.return_view(row)


def dispute_document(dispute: DisputeAggregate, refund_status: str | None = None) -> dict[str, Any]:
    resolution = dispute.resolution or {}
    row = SimpleNamespace(
        dispute_id=str(dispute.id),
        order_id=dispute.order_id,
        order_number=dispute.order_number,
        buyer_id=dispute.buyer_id,
        seller_id=dispute.seller_id,
        opened_by=dispute.opened_by,
        opener_role=dispute.opener_role,
        status=dispute.status,
        reason=dispute.reason,
        text=dispute.text,
        statement_count=len(dispute.statements),
        opened_at=dispute.opened_at,
        updated_at=dispute.updated_at,
        resolution=resolution.get("resolution"),
        resolution_note=resolution.get("note"),
        resolved_by=resolution.get("adminId"),
        resolved_at=resolution.get("at"),
        **_refund_fields(resolution.get("refund"), refund_status),
    )
    statements = [
        q.statement_view(s["authorId"], s["role"], s["text"], s["at"]) for s in dispute.statements
    ]
    return q.dispute_view(row, statements)


def _run_refunding(
    request: Request,
    container: Container,
    command: Any,
    body: Any,
    document: Callable[[Any, str | None], dict[str, Any]],
    what: str,
) -> Response:
    """Run a command that may request a refund on the order: settled at once (no card), or
    paid back by the card gateway after the commit; the answer shows the refund's status."""
    once = Once(request, container, request_fingerprint_body(body))
    if once.replay is not None:
        return once.replay
    with once:
        outcome = container.bus.execute(
            command,
            event_meta(request),
            finalize=once.finalize(
                lambda result: None if result[1] is not None else (200, document(result[0], None))
            ),
        )
        aggregate, pending = outcome.result
        if pending is None:
            return once.response(outcome.position)
        settled = _settle(
            request, container, pending, once, lambda: document(aggregate, "COMPLETED")
        )
        if settled is None:
            raise ApiError(
                422,
                "REFUND_FAILED",
                f"the {what} is recorded, but the card gateway refused the refund; the seller or "
                "an admin can refund the order through POST .../refunds",
                {"refundId": pending.refund_id, f"{what}Id": str(aggregate.id)},
            )
    return once.response(settled)


def _settle(
    request: Request,
    container: Container,
    pending: PendingRefund,
    once: Once,
    answer: Callable[[], dict[str, Any]],
) -> int | None:
    settled = settle_refund_with_gateway(
        request, container, pending, lambda _tx: once.finalize(lambda _order: (200, answer()))
    )
    return None if settled.transaction_id is None else settled.position


def _is_admin(principal: Principal) -> bool:
    return principal.has_role("admin")


def _sees_all(principal: Principal) -> bool:
    """Admins and auditors read every return and dispute."""
    return principal.reads_all


def _order_scope(container: Container, principal: Principal, order_id: str) -> dict[str, str]:
    """Which of an order's cases the caller sees: all (its buyer, admins) or a seller's own;
    anyone else gets 404 as for the order."""
    oid = str(path_id(order_id, "ORDER_NOT_FOUND", "order"))
    doc = orders_q.get_order(container.engine, oid)
    if doc is not None:
        if _sees_all(principal) or doc["userId"] == principal.account_id:
            return {"order_id": oid}
        if any(i["sellerId"] == principal.account_id for i in doc["items"]):
            return {"order_id": oid, "seller_id": principal.account_id}
    raise ApiError(404, "ORDER_NOT_FOUND", "order not found", {"orderId": order_id})


def _scope(principal: Principal, seller_id: str | None) -> dict[str, str]:
    """Whose cases a list shows: a buyer's own, a seller's with ``sellerId=me``, any for admins."""
    if seller_id == "me":
        if not principal.has_role("seller", "admin"):
            raise ApiError(403, "FORBIDDEN", "sellerId=me is for sellers")
        return {"seller_id": principal.account_id}
    if _sees_all(principal):
        return {} if seller_id is None else {"seller_id": seller_id}
    if seller_id is not None and seller_id != principal.account_id:
        raise ApiError(403, "FORBIDDEN", "you can only list your own")
    return (
        {"seller_id": principal.account_id}
        if seller_id is not None
        else {"buyer_id": principal.account_id}
    )


def _party(row: Any, principal: Principal) -> bool:
    return _sees_all(principal) or principal.account_id in (row.buyer_id, row.seller_id)


SellerQuery = Annotated[
    str | None,
    Query(alias="sellerId", max_length=64, description="`me`: a seller's own (admins: any)"),
]


# --- returns --------------------------------------------------------------------------------
RETURN_NOT_FOUND = {404: "RETURN_NOT_FOUND"}


@router.post(
    "/api/sales/orders/{order_id}/returns",
    status_code=201,
    response_model=None,
    responses=documented(
        Return,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            404: "ORDER_NOT_FOUND",
            409: (
                "INVALID_ORDER_STATUS",
                "RETURN_WINDOW_CLOSED",
                "RETURN_ALREADY_EXISTS",
                "CONFLICT",
            ),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def request_return(
    order_id: str,
    body: ReturnBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Ask to return delivered items (the order's buyer).

    Within the return window (7 days after delivery by default; later is 409
    RETURN_WINDOW_CLOSED); an order not DELIVERED is 409 INVALID_ORDER_STATUS. Never more units
    than were delivered and not refunded. One return per order and seller, listing every item
    (a second is 409 RETURN_ALREADY_EXISTS). The seller is notified (RETURN_REQUESTED)."""
    command = RequestReturn(
        order_id=path_id(order_id, "ORDER_NOT_FOUND", "order"),
        buyer_id=principal.account_id,
        items=tuple((i.order_item_id, i.quantity) for i in body.items),
        reason=body.reason,
        images=tuple(body.images),
        window=container.settings.return_window,
    )
    return run_command(request, container, command, lambda ret: (201, return_document(ret)), body)


@router.get(
    "/api/sales/orders/{order_id}/returns",
    dependencies=READS_WITH_ORDERS,
    response_model=None,
    responses=documented(ReturnList, errors={404: "ORDER_NOT_FOUND"}),
)
def order_returns(
    order_id: str, principal: CurrentUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """An order's returns, newest first (its buyer and admins; a seller its own)."""
    return q.list_returns(container.engine, page, _order_scope(container, principal, order_id))


@router.get(
    "/api/sales/returns",
    dependencies=READS,
    response_model=None,
    responses=documented(ReturnList, errors={403: "FORBIDDEN"}),
)
def list_returns(
    principal: CurrentUser,
    container: ContainerDep,
    page: PageDep,
    seller_id: SellerQuery = None,
    status: ReturnStatus | None = None,
) -> dict[str, Any]:
    """Returns, newest first: a buyer's own; a seller's with ``sellerId=me``; all for admins."""
    return q.list_returns(container.engine, page, _scope(principal, seller_id), status=status)


@router.get(
    "/api/sales/returns/{return_id}",
    dependencies=READS,
    response_model=None,
    responses=documented(Return, errors=RETURN_NOT_FOUND),
)
def get_return(return_id: str, principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """One return (its buyer, its seller, admins, auditors)."""
    row = q.get_return(container.engine, str(path_id(return_id, "RETURN_NOT_FOUND", "return")))
    if row is None or not _party(row, principal):
        raise ApiError(404, "RETURN_NOT_FOUND", "return not found", {"returnId": return_id})
    return q.return_view(row)


RETURN_STEP = documented(
    Return,
    errors={
        400: "VALIDATION_ERROR",
        403: "FORBIDDEN",
        404: "RETURN_NOT_FOUND",
        409: ("INVALID_RETURN_STATUS", "CONFLICT"),
    },
)


def _return_id(raw: str) -> Any:
    return path_id(raw, "RETURN_NOT_FOUND", "return")


@router.post(
    "/api/sales/returns/{return_id}/approve",
    response_model=None,
    responses=RETURN_STEP,
    openapi_extra=IDEMPOTENT,
)
def approve_return(
    return_id: str,
    body: ApproveBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """The seller (or an admin) approves a REQUESTED return; the buyer is told to ship it back."""
    command = DecideReturn(
        _return_id(return_id), principal.account_id, _is_admin(principal), True, body.note
    )
    return run_command(
        request, container, command, lambda r: (200, return_document(r)), body, scope="approve"
    )


@router.post(
    "/api/sales/returns/{return_id}/reject",
    response_model=None,
    responses=RETURN_STEP,
    openapi_extra=IDEMPOTENT,
)
def reject_return(
    return_id: str,
    body: RejectBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """The seller (or an admin) rejects a REQUESTED return with a reason (the buyer may open
    a dispute)."""
    command = DecideReturn(
        _return_id(return_id), principal.account_id, _is_admin(principal), False, body.reason
    )
    return run_command(
        request, container, command, lambda r: (200, return_document(r)), body, scope="reject"
    )


@router.post(
    "/api/sales/returns/{return_id}/ship-back",
    response_model=None,
    responses=RETURN_STEP,
    openapi_extra=IDEMPOTENT,
)
def ship_back_return(
    return_id: str,
    body: ShipBackBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """The buyer sends an APPROVED return back (carrier and tracking number); the seller is
    told."""
    command = ShipBackReturn(
        _return_id(return_id), principal.account_id, body.carrier, body.tracking_number
    )
    return run_command(
        request, container, command, lambda r: (200, return_document(r)), body, scope="ship-back"
    )


@router.post(
    "/api/sales/returns/{return_id}/receive",
    response_model=None,
    responses=documented(
        Return,
        errors={
            400: "VALIDATION_ERROR",
            403: "FORBIDDEN",
            404: "RETURN_NOT_FOUND",
            409: ("INVALID_RETURN_STATUS", "CONFLICT"),
            422: "REFUND_FAILED",
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def receive_return(
    return_id: str,
    body: ReceiveBody,
    principal: SellerOrAdmin,
    request: Request,
    container: ContainerDep,
) -> Response:
    """The seller (or an admin) received the items back.

    The units go back on hand in ``warehouseId`` (a RETURN stock movement) and their refund
    (their share of the goods after discount, with tax) is requested on the order, capped by
    what is still refundable; the buyer is told."""
    command = ReceiveReturn(
        _return_id(return_id), principal.account_id, _is_admin(principal), body.warehouse_id
    )
    return _run_refunding(request, container, command, body, return_document, "return")


# --- disputes -------------------------------------------------------------------------------
DISPUTE_NOT_FOUND = {404: "DISPUTE_NOT_FOUND"}


def _dispute_id(raw: str) -> Any:
    return path_id(raw, "DISPUTE_NOT_FOUND", "dispute")


@router.post(
    "/api/sales/orders/{order_id}/disputes",
    status_code=201,
    response_model=None,
    responses=documented(
        Dispute,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "DISPUTE_ALREADY_EXISTS", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def open_dispute(
    order_id: str,
    body: DisputeBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Open a dispute about a paid order (its buyer, or one of its sellers).

    One per order and seller (409 DISPUTE_ALREADY_EXISTS); a buyer names the seller
    (``sellerId``) when the order has several. The other side is notified (DISPUTE_OPENED)."""
    command = OpenDispute(
        order_id=path_id(order_id, "ORDER_NOT_FOUND", "order"),
        actor_id=principal.account_id,
        reason=body.reason,
        text=body.text,
        seller_id=body.seller_id,
    )
    return run_command(request, container, command, lambda d: (201, dispute_document(d)), body)


@router.get(
    "/api/sales/orders/{order_id}/disputes",
    dependencies=READS_WITH_ORDERS,
    response_model=None,
    responses=documented(DisputeList, errors={404: "ORDER_NOT_FOUND"}),
)
def order_disputes(
    order_id: str, principal: CurrentUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """An order's disputes, newest first (its buyer and admins; a seller its own)."""
    return q.list_disputes(container.engine, page, _order_scope(container, principal, order_id))


@router.get(
    "/api/sales/disputes",
    dependencies=READS,
    response_model=None,
    responses=documented(DisputeList, errors={403: "FORBIDDEN"}),
)
def list_disputes(
    principal: CurrentUser,
    container: ContainerDep,
    page: PageDep,
    seller_id: SellerQuery = None,
    status: DisputeStatus | None = None,
) -> dict[str, Any]:
    """Disputes, newest first: a buyer's own; a seller's with ``sellerId=me``; all for admins."""
    return q.list_disputes(container.engine, page, _scope(principal, seller_id), status=status)


@router.get(
    "/api/sales/disputes/{dispute_id}",
    dependencies=READS,
    response_model=None,
    responses=documented(Dispute, errors=DISPUTE_NOT_FOUND),
)
def get_dispute(dispute_id: str, principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """One dispute with its statements, oldest first (its two sides, admins, auditors)."""
    found = q.get_dispute(container.engine, str(_dispute_id(dispute_id)))
    if found is None or not _party(found[0], principal):
        raise ApiError(404, "DISPUTE_NOT_FOUND", "dispute not found", {"disputeId": dispute_id})
    return q.dispute_view(*found)


@router.post(
    "/api/sales/disputes/{dispute_id}/statements",
    status_code=201,
    response_model=None,
    responses=documented(
        Dispute,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            404: "DISPUTE_NOT_FOUND",
            409: ("DISPUTE_CLOSED", "CONFLICT"),
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def add_statement(
    dispute_id: str,
    body: StatementBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Add a statement to an OPEN dispute (either side, or an admin); the other side is told."""
    command = AddStatement(
        _dispute_id(dispute_id), principal.account_id, _is_admin(principal), body.text
    )
    return run_command(request, container, command, lambda d: (201, dispute_document(d)), body)


@router.post(
    "/api/sales/disputes/{dispute_id}/resolve",
    response_model=None,
    responses=documented(
        Dispute,
        errors={
            400: "VALIDATION_ERROR",
            403: "FORBIDDEN",
            404: "DISPUTE_NOT_FOUND",
            409: ("DISPUTE_CLOSED", "CONFLICT"),
            422: "REFUND_FAILED",
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def resolve_dispute(
    dispute_id: str,
    body: ResolveBody,
    principal: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Resolve an OPEN dispute (admins): REFUND_FULL, REFUND_PARTIAL with ``amount``, or
    REJECTED, with a note.

    REFUND_FULL refunds what is left of the order (of the seller's items when the order has
    several sellers); REFUND_PARTIAL at most that (more is 422 REFUND_FAILED). A refund counts
    as a lost dispute for the seller: too many within the window flag the seller for admin
    review (SELLER_FLAGGED to admins). Both sides are told."""
    amount = None if body.amount is None else parse_money(body.amount)
    settings = container.settings
    command = ResolveDispute(
        dispute_id=_dispute_id(dispute_id),
        admin_id=principal.account_id,
        resolution=body.resolution,
        amount=amount,
        note=body.note,
        admin_ids=tuple(q.admin_ids(container.engine)),
        loss_window=settings.dispute_loss_window,
        losses_to_flag=settings.dispute_losses_to_flag,
    )
    return _run_refunding(request, container, command, body, dispute_document, "dispute")


# --- admins ---------------------------------------------------------------------------------
@router.get(
    "/api/admin/disputes",
    dependencies=READS,
    response_model=None,
    responses=documented(DisputeList, errors={403: "FORBIDDEN"}),
)
def dispute_queue(_: AdminUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """The admins' queue: OPEN disputes, oldest first."""
    return q.list_disputes(container.engine, page, {}, status="OPEN", oldest_first=True)


@router.get(
    "/api/admin/sellers/dispute-records",
    dependencies=READS,
    response_model=None,
    responses=documented(SellerDisputeRecordList, errors={403: "FORBIDDEN"}),
)
def seller_records(
    _: AdminUser,
    container: ContainerDep,
    page: PageDep,
    flagged: Annotated[
        bool, Query(description="true (default): flagged, oldest flag first")
    ] = True,
) -> dict[str, Any]:
    """Sellers flagged for review after too many lost disputes (``flagged=false``: the others
    with lost disputes, most lost first)."""
    return q.seller_records(container.engine, page, flagged=flagged)


@router.get(
    "/api/admin/sellers/{seller_id}/dispute-record",
    dependencies=READS,
    response_model=None,
    responses=documented(SellerDisputeRecord, errors={403: "FORBIDDEN", 404: "NOT_FOUND"}),
)
def seller_record(seller_id: str, _: AdminUser, container: ContainerDep) -> dict[str, Any]:
    """A seller's lost disputes and review flag (404 until the seller loses one)."""
    record = q.seller_record(container.engine, str(path_id(seller_id, "NOT_FOUND", "record")))
    if record is None:
        raise ApiError(404, "NOT_FOUND", "the seller has lost no dispute", {"sellerId": seller_id})
    return record


@router.post(
    "/api/admin/sellers/{seller_id}/dispute-record/clear-flag",
    response_model=None,
    responses=documented(
        SellerDisputeRecord,
        errors={400: "VALIDATION_ERROR", 403: "FORBIDDEN", 409: "CONFLICT"},
    ),
    openapi_extra=IDEMPOTENT,
)
def clear_flag(
    seller_id: str,
    body: ClearFlagBody,
    principal: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """An admin has reviewed a flagged seller (409 when not flagged). The next lost dispute
    while the count in the window is still at the limit flags it again."""
    sid = str(path_id(seller_id, "NOT_FOUND", "seller"))
    command = ClearSellerFlag(sid, principal.account_id, body.note)

    return run_command(
        request, container, command, lambda r: (200, record_document(r)), body, scope="clear-flag"
    )


def record_document(record: SellerRecordAggregate) -> dict[str, Any]:
    flag = record.flag or {}
    row = SimpleNamespace(
        seller_id=record.seller_id,
        disputes_lost=len(record.losses),
        last_lost_at=record.losses[-1] if record.losses else None,
        flagged=record.flagged,
        flagged_at=flag.get("at"),
        lost_in_window=flag.get("lost"),
        window_days=flag.get("windowDays"),
        flagging_dispute_id=flag.get("disputeId"),
        cleared_at=flag.get("clearedAt"),
        cleared_by=flag.get("clearedBy"),
        clear_note=flag.get("note"),
    )
    return q.record_view(row)
