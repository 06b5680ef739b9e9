"""Answer shapes of returns, disputes and sellers' dispute records, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.responses import Money, Pagination
from api.schemas import ResponseBody

ReturnStatus = Literal["REQUESTED", "APPROVED", "REJECTED", "SHIPPED_BACK", "RECEIVED"]
DisputeStatus = Literal["OPEN", "RESOLVED"]
Resolution = Literal["REFUND_FULL", "REFUND_PARTIAL", "REJECTED"]


class CaseRefund(ResponseBody):
    refund_id: str = Field(description="the refund on the order (GET .../orders/{id}/refunds)")
    amount: Money
    status: Literal["PENDING", "COMPLETED", "FAILED"] = Field(
        description="PENDING while the card gateway pays it back; FAILED: the gateway refused"
    )


class ReturnLine(ResponseBody):
    order_item_id: str
    product_id: str
    name: str
    quantity: int = Field(ge=1)
    unit_price: Money


class Return(ResponseBody):
    return_id: str
    order_id: str
    order_number: str
    buyer_id: str
    seller_id: str
    status: ReturnStatus
    items: list[ReturnLine]
    reason: str
    images: list[str]
    decision_note: str | None = Field(
        description="the seller's note (approved) or reason (rejected)"
    )
    carrier: str | None = Field(description="how the buyer sent it back")
    tracking_number: str | None
    warehouse_id: str | None = Field(description="where the units went back on hand")
    refund: CaseRefund | None = Field(
        description="once RECEIVED: the refund of what was still refundable (null: nothing was)"
    )
    requested_at: datetime
    updated_at: datetime


class ReturnList(ResponseBody):
    returns: list[Return]
    pagination: Pagination


class Statement(ResponseBody):
    author_id: str
    role: Literal["buyer", "seller", "admin"]
    text: str
    at: datetime


class DisputeResolution(ResponseBody):
    resolution: Resolution
    note: str
    resolved_by: str
    resolved_at: datetime
    refund: CaseRefund | None = Field(description="null for REJECTED, or when nothing was left")


class Dispute(ResponseBody):
    dispute_id: str
    order_id: str
    order_number: str
    buyer_id: str
    seller_id: str
    opened_by: str
    opener_role: Literal["buyer", "seller"]
    status: DisputeStatus
    reason: str
    text: str
    statement_count: int = Field(ge=0)
    opened_at: datetime
    updated_at: datetime
    resolution: DisputeResolution | None
    statements: list[Statement] | None = Field(
        default=None, description="oldest first; on the one-dispute answers only"
    )


class DisputeList(ResponseBody):
    disputes: list[Dispute]
    pagination: Pagination


class SellerDisputeRecord(ResponseBody):
    seller_id: str
    disputes_lost: int = Field(ge=0, description="disputes resolved with a refund, all time")
    last_lost_at: datetime | None
    flagged: bool = Field(description="flagged for admin review")
    flagged_at: datetime | None
    lost_in_window: int | None = Field(description="lost disputes in the window when flagged")
    window_days: int | None
    flagging_dispute_id: str | None
    cleared_at: datetime | None
    cleared_by: str | None
    clear_note: str | None


class SellerDisputeRecordList(ResponseBody):
    sellers: list[SellerDisputeRecord]
    pagination: Pagination
