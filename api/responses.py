"""Response bodies as the API answers them, for the OpenAPI document (see api/openapi.py).

Routes build their answers as plain dicts (or JSONResponse through ``run_command``); these
models only document them (``responses={200: {"model": X}}`` with ``response_model=None``), so
they never filter or reject an answer. tests/e2e/test_openapi.py checks every answer against
them, undocumented fields included. Money is always :class:`Money`; lists carry
:class:`Pagination`; ids are strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, RootModel

from api.schemas import ResponseBody

Role = Literal["buyer", "seller", "admin", "auditor"]
AccountStatus = Literal["active", "disabled"]
ProductStatus = Literal["active", "delisted", "suspended"]
OrderStatus = Literal["CREATED", "PAID", "PROCESSING", "SHIPPED", "DELIVERED", "CANCELLED"]
PaymentMethod = Literal["CREDIT_CARD", "DEBIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT", "COD"]
PaymentStatus = Literal["PENDING", "COMPLETED", "FAILED", "REFUNDED", "PARTIALLY_REFUNDED"]
ShippingStatus = Literal["NOT_SHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"]
FulfillmentStatus = Literal[
    "UNFULFILLED", "PROCESSING", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "CANCELLED"
]
RefundStatus = Literal["NOT_APPLICABLE", "PENDING", "COMPLETED", "FAILED"]
ShippingMethod = Literal["STANDARD", "EXPRESS", "SAME_DAY", "PICKUP"]
ShipmentStatus = Literal[
    "PROCESSING", "SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "EXCEPTION"
]
AttemptStatus = Literal["COMPLETED", "FAILED"]


# --- shared ---------------------------------------------------------------------------------
class Money(ResponseBody):
    """An amount in New Taiwan dollars (computed with Decimal, at most 2 decimals)."""

    value: float = Field(examples=[1265.93])
    currency: Literal["TWD"]


class Pagination(ResponseBody):
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=100)
    total_items: int = Field(ge=0)
    total_pages: int = Field(ge=0)


class ErrorInfo(ResponseBody):
    code: str = Field(description="machine-readable error code, e.g. ORDER_NOT_FOUND")
    message: str = Field(description="for humans; may change")
    details: dict[str, Any] = Field(description="what the code needs to be acted on (may be {})")


class ErrorResponse(ResponseBody):
    """The error envelope every JSON error answers with."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "ORDER_NOT_FOUND",
                        "message": "order not found",
                        "details": {"orderId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10"},
                    }
                }
            ]
        }
    )

    error: ErrorInfo


class ValidationProblem(ResponseBody):
    """One invalid input. A domain rule may add the facts it checked (``keyword``, ``length``,
    ``url``, ...) next to these three."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(
        description='JSON path of the input in camelCase, e.g. "items[0].quantity"; '
        '"header:X-Min-Position" for a header, "body" for the whole body'
    )
    problem: str = Field(
        description="machine-readable code: REQUIRED, UNKNOWN_FIELD, TOO_SHORT, TOO_LONG, "
        "TOO_SMALL, TOO_LARGE, BAD_FORMAT, WRONG_TYPE, NOT_ALLOWED_VALUE, INVALID_JSON, or a "
        "domain rule's (WEAK_PASSWORD, BANNED_KEYWORD, ...)"
    )
    message: str = Field(description="for humans")


class ValidationErrorDetails(ResponseBody):
    model_config = ConfigDict(extra="allow")

    errors: list[ValidationProblem] = Field(
        default_factory=list,
        description="one entry per invalid input when the body, query or headers failed "
        "validation (unknown fields included)",
    )
    field: str | None = Field(default=None, description="the one input a domain rule refused")


class ValidationErrorInfo(ResponseBody):
    code: str = Field(description="VALIDATION_ERROR, or a domain code such as INVALID_COUPON")
    message: str
    details: ValidationErrorDetails


class ValidationErrorResponse(ResponseBody):
    """400: the request is not valid (never 422: unknown fields are refused with 400 too)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "the request has 2 problems",
                        "details": {
                            "errors": [
                                {
                                    "field": "refundItems[0].quantity",
                                    "problem": "TOO_SMALL",
                                    "message": "Input should be greater than or equal to 1",
                                },
                                {
                                    "field": "amount",
                                    "problem": "UNKNOWN_FIELD",
                                    "message": "Extra inputs are not permitted",
                                },
                            ]
                        },
                    }
                }
            ]
        }
    )

    error: ValidationErrorInfo


# --- auth -----------------------------------------------------------------------------------
class AccountSummary(ResponseBody):
    user_id: str
    email: str
    username: str
    display_name: str
    role: Role
    email_verified: bool


class TokenPair(ResponseBody):
    """Bearer mode: both tokens in the body. Cookie mode (``useCookies``): the tokens are set as
    HttpOnly cookies and the body carries ``csrfToken`` instead."""

    access_token: str | None = Field(default=None, description="RS256 JWT (bearer mode only)")
    refresh_token: str | None = Field(default=None, description="bearer mode only")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds until the access token expires")
    csrf_token: str | None = Field(
        default=None, description="cookie mode only: echo it in X-CSRF-Token on state changes"
    )
    user: AccountSummary


class EmailVerified(ResponseBody):
    user_id: str
    email_verified: bool


class VerificationSent(ResponseBody):
    status: Literal["sent"]


class JsonWebKey(ResponseBody):
    kty: Literal["RSA"]
    use: Literal["sig"]
    alg: Literal["RS256"]
    kid: str
    n: str
    e: str


class JsonWebKeySet(ResponseBody):
    keys: list[JsonWebKey]


# --- users ----------------------------------------------------------------------------------
class SellerApplication(ResponseBody):
    status: Literal["pending", "approved", "rejected"]
    shop_name: str
    description: str
    applied_at: datetime
    rejection_reason: str | None = Field(
        default=None, description="why an admin refused it (status rejected)"
    )


class NextLevel(ResponseBody):
    code: Literal["SILVER", "GOLD", "PLATINUM"]
    name: str
    min_spend: Money = Field(description="spend in the window that reaches it")


class MembershipLevel(ResponseBody):
    """The buyer's level (seeds/001 membership_levels): set by spend on delivered orders in the
    last 12 months, reviewed by a timed rule; its multiplier applies to points earned."""

    code: Literal["REGULAR", "SILVER", "GOLD", "PLATINUM"]
    name: str = Field(examples=["銀"])
    points_multiplier: float = Field(gt=0)
    qualifying_spend: Money = Field(description="the spend the last review counted")
    reviewed_at: datetime | None
    next_level: NextLevel | None


class PointsEntry(ResponseBody):
    entry_id: str
    type: Literal["EARNED", "SPENT", "RETURNED", "REVOKED"]
    points: int = Field(description="change of the balance (negative: points went out)")
    balance: int = Field(ge=0, description="balance after this entry")
    owed: int = Field(ge=0, description="points still to be taken back after this entry")
    order_id: str | None
    details: dict[str, Any]
    at: datetime


class PointsSummary(ResponseBody):
    balance: int = Field(ge=0)
    owed: int = Field(
        ge=0, description="points a refund could not take back (already spent): settled first"
    )
    level: MembershipLevel
    ledger: list[PointsEntry]
    pagination: Pagination


class UserProfile(ResponseBody):
    user_id: str
    email: str
    username: str
    display_name: str
    phone: str | None
    role: Role
    status: AccountStatus
    deleted: bool
    email_verified: bool
    created_at: datetime | None = Field(default=None, description="absent in command answers")
    last_login_at: datetime | None = Field(default=None, description="absent in command answers")
    seller_application: SellerApplication | None
    listing_rights: Literal["active", "suspended"]
    tags: list[str] | None = Field(
        default=None, description="admins' customer tags (admin views only)"
    )
    level: MembershipLevel | None = Field(
        default=None, description="loyalty membership level; on GET /api/users/me only"
    )


class UserList(ResponseBody):
    users: list[UserProfile]
    pagination: Pagination


class LoginAttempt(ResponseBody):
    at: datetime
    success: bool
    ip: str
    user_agent: str
    reason: str | None = Field(description="why a failed attempt failed (bad_password, locked...)")


class LoginHistory(ResponseBody):
    entries: list[LoginAttempt]
    pagination: Pagination


class SavedAddress(ResponseBody):
    address_id: str
    label: str | None
    name: str
    phone: str
    street: str
    city: str
    district: str
    postal_code: str
    country: str
    is_default: bool
    created_at: datetime | None = Field(default=None, description="absent in command answers")


class AddressList(ResponseBody):
    addresses: list[SavedAddress]


class SellerApplicationReceipt(ResponseBody):
    user_id: str
    status: Literal["pending", "approved"]
    shop_name: str
    description: str
    applied_at: datetime


class CustomerTags(ResponseBody):
    user_id: str
    tags: list[str]


class CustomerNote(ResponseBody):
    note_id: str
    user_id: str
    text: str
    author_id: str
    created_at: datetime


class CustomerNoteList(ResponseBody):
    notes: list[CustomerNote]
    pagination: Pagination


class CustomerSpend(ResponseBody):
    order_count: int = Field(ge=0, description="orders placed (cancelled ones included)")
    paid_order_count: int = Field(ge=0, description="orders with a completed payment")
    total_paid: Money
    total_refunded: Money
    net_spend: Money = Field(description="paid minus refunded")


class CustomerOrderSummary(ResponseBody):
    order_id: str
    order_number: str
    status: OrderStatus
    payment_status: PaymentStatus
    payment_method: PaymentMethod
    total: Money
    paid: Money
    refunded: Money
    created_at: datetime


class CustomerOrders(ResponseBody):
    user_id: str
    spend: CustomerSpend
    orders: list[CustomerOrderSummary]
    pagination: Pagination


class SellerReportReceipt(ResponseBody):
    seller_id: str
    status: Literal["received"]


# --- catalog --------------------------------------------------------------------------------
class CategoryNode(ResponseBody):
    category_id: str
    name: str
    parent_id: str | None
    depth: int = Field(ge=0, description="0 for a root category")
    children: list[CategoryNode]


class CategoryTree(ResponseBody):
    categories: list[CategoryNode]


class Product(ResponseBody):
    product_id: str
    seller_id: str
    seller_name: str | None
    name: str
    description: str
    category_id: str
    price: Money = Field(description="what a buyer pays now (the sale price while one is on)")
    regular_price: Money
    sale_price: Money | None = Field(description="the sale price in force now, or null")
    sale_ends_at: datetime | None = Field(description="when the sale in force ends, or null")
    images: list[str]
    supplier_ids: list[str] | None = Field(
        default=None, description="only shown to the product's seller and admins"
    )
    status: ProductStatus
    listed: bool | None = Field(default=None, description="on sale (read views only)")
    stock: int = Field(ge=0, description="units available over all warehouses")
    units_sold: int | None = Field(default=None, description="read views only")
    rating: float | None = Field(
        default=None,
        ge=1,
        le=10,
        description="average product score of its visible reviews, one decimal (read views;"
        " null: no review yet)",
    )
    review_count: int | None = Field(
        default=None, ge=0, description="visible reviews (read views only)"
    )
    created_at: datetime
    updated_at: datetime
    version: int
    review_status: Literal["approved", "pending", "rejected"] | None = Field(
        default=None,
        description="moderation (SHOPLEDGER_PRODUCT_REVIEW): the admin's decision on the latest"
        " submission; seller and admins only",
    )
    review_reason: str | None = Field(
        default=None, description="why an admin rejected it; seller and admins only"
    )
    pending_changes: dict[str, Any] | None = Field(
        default=None,
        description="an edit of a live product waiting for review (name, description,"
        " categoryId, images); the live values stay public meanwhile; seller and admins only",
    )
    submitted_at: datetime | None = Field(
        default=None, description="when the waiting submission was made; seller and admins only"
    )


class SalePrice(ResponseBody):
    """A sale price on a product for a window of time."""

    sale_id: str
    product_id: str
    sale_price: Money
    regular_price: Money = Field(description="the product's regular price now")
    starts_at: datetime
    ends_at: datetime = Field(description="the planned end")
    status: Literal["SCHEDULED", "ACTIVE", "ENDED", "CANCELLED"]
    cancelled_at: datetime | None
    created_at: datetime


class SalePriceList(ResponseBody):
    sale_prices: list[SalePrice]
    pagination: Pagination


class ProductList(ResponseBody):
    products: list[Product]
    pagination: Pagination


class BannedKeywords(ResponseBody):
    keywords: list[str]


class PricePoint(ResponseBody):
    at: datetime
    price: Money = Field(description="what buyers paid from then on")
    previous_price: Money | None
    regular_price: Money
    sale_price: Money | None = Field(description="the sale price in force from then on, or null")
    change: Literal["PRICE", "SALE_START", "SALE_END"] = Field(
        description="a regular price change, or a sale window starting or ending"
    )
    changed_by: str | None


class PriceHistory(ResponseBody):
    product_id: str
    points: list[PricePoint]
    truncated: bool


class TrendPoint(ResponseBody):
    period: str = Field(description="2026-12-02, 2026-W49 or 2026-12")
    period_start: date
    products: int
    average: Money | None
    min: Money | None
    max: Money | None


class PriceTrend(ResponseBody):
    category_id: str
    group_by: Literal["DAY", "WEEK", "MONTH"]
    from_date: date
    to_date: date
    series: list[TrendPoint]


class ComparedProduct(ResponseBody):
    product_id: str
    name: str
    current_price: Money
    points: list[PricePoint]
    start_price: Money | None
    end_price: Money | None
    min: Money | None
    max: Money | None
    change_percent: float | None


class PriceComparison(ResponseBody):
    from_date: date
    to_date: date
    products: list[ComparedProduct]


class Bestseller(ResponseBody):
    rank: int = Field(ge=1)
    product_id: str
    name: str
    units_sold: int
    price: Money = Field(description="what a buyer pays now (the sale price while one is on)")
    regular_price: Money
    sale_price: Money | None
    sale_ends_at: datetime | None
    seller_id: str
    seller_name: str | None
    category_id: str


class Bestsellers(ResponseBody):
    category_id: str | None
    days: int
    products: list[Bestseller]


# --- inventory ------------------------------------------------------------------------------
class Warehouse(ResponseBody):
    warehouse_id: str
    code: str
    name: str
    address: str
    created_at: datetime | None = Field(default=None, description="absent in command answers")


class WarehouseList(ResponseBody):
    warehouses: list[Warehouse]
    pagination: Pagination


class Supplier(ResponseBody):
    supplier_id: str
    name: str
    contact_email: str | None
    phone: str | None
    address: str
    created_at: datetime | None = Field(default=None, description="absent in command answers")
    product_ids: list[str] | None = Field(
        default=None, description="GET by id only: the products it supplies (a seller's own)"
    )


class SupplierList(ResponseBody):
    suppliers: list[Supplier]
    pagination: Pagination


class WarehouseStock(ResponseBody):
    warehouse_id: str
    code: str | None = Field(default=None, description="read views only")
    name: str | None = Field(default=None, description="read views only")
    on_hand: int
    reserved: int
    available: int


class StockTotals(ResponseBody):
    on_hand: int
    reserved: int
    available: int


class StockLevels(ResponseBody):
    product_id: str
    warehouses: list[WarehouseStock]
    totals: StockTotals


class StockReceipt(ResponseBody):
    receipt_id: str
    quantity: int
    stock: StockLevels


class StockTransfer(ResponseBody):
    transfer_id: str
    quantity: int
    stock: StockLevels


class StockAdjustment(ResponseBody):
    adjustment_id: str
    quantity_change: int
    stock: StockLevels


class StockMovement(ResponseBody):
    position: int = Field(description="event position that moved the stock")
    warehouse_id: str | None
    kind: str = Field(
        description="RECEIPT, TRANSFER_IN, TRANSFER_OUT, ADJUST_<reason>, RESERVED, RELEASED, RETURN, ..."
    )
    on_hand_change: int
    reserved_change: int
    reference: str | None
    note: str | None
    at: datetime
    actor: str | None


class MovementList(ResponseBody):
    movements: list[StockMovement]
    pagination: Pagination


# --- cart, coupons, notifications -----------------------------------------------------------
class CartLine(ResponseBody):
    product_id: str
    name: str | None = Field(description="null when the product is unknown to the catalog")
    seller_id: str | None
    quantity: int
    unit_price: Money = Field(description="the price paid now (the sale price while one is on)")
    regular_price: Money
    sale_price: Money | None
    sale_ends_at: datetime | None
    subtotal: Money
    available: bool = Field(description="false: no longer for sale, left out of the subtotal")
    in_stock: int = Field(ge=0)


class Cart(ResponseBody):
    items: list[CartLine]
    subtotal: Money


class Coupon(ResponseBody):
    code: str
    type: Literal["FIXED", "PERCENT"]
    value: Money | float = Field(description="Money for FIXED, a percentage for PERCENT")
    max_discount: Money | None
    min_spend: Money
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_user_limit: int | None
    used: int
    remaining: int | None
    seller_id: str | None
    category_id: str | None


class Notification(ResponseBody):
    notification_id: str
    type: str = Field(description="ORDER_PLACED, ORDER_PAID, ORDER_SHIPPED, REFUND_ISSUED, ...")
    title: str
    body: str
    data: dict[str, Any] = Field(description="orderId and the like")
    created_at: datetime
    read_at: datetime | None


# --- reviews --------------------------------------------------------------------------------
class ReviewReply(ResponseBody):
    text: str
    replied_at: datetime


class Review(ResponseBody):
    review_id: str
    order_id: str | None = Field(
        default=None, description="to its author (write answers) and admins only"
    )
    product_id: str
    seller_id: str
    reviewer_name: str = Field(description="the reviewer's display name, masked (王**)")
    product_score: int = Field(ge=1, le=10)
    seller_score: int = Field(ge=1, le=10)
    text: str
    images: list[str]
    edited: bool = Field(description="changed since it was written (history kept as events)")
    created_at: datetime
    updated_at: datetime
    reply: ReviewReply | None = Field(description="the seller's one reply")
    hidden: bool | None = Field(default=None, description="admins only")
    hidden_reason: str | None = Field(default=None, description="admins only")


class RatingSummary(ResponseBody):
    average: float | None = Field(
        ge=1, le=10, description="of the visible reviews, one decimal; null: none yet"
    )
    count: int = Field(ge=0)
    histogram: dict[str, int] = Field(description='reviews per score, "1" to "10"')


class ReviewList(ResponseBody):
    reviews: list[Review]
    summary: RatingSummary
    pagination: Pagination


# --- messages -------------------------------------------------------------------------------
class MessageSent(ResponseBody):
    message_id: str
    conversation_id: str
    sender_id: str
    receiver_id: str
    text: str
    order_id: str | None
    product_id: str | None
    created_at: datetime


class Message(MessageSent):
    position: int = Field(description="the event's position (for ?after= on the live stream)")


class Party(ResponseBody):
    user_id: str
    display_name: str | None
    role: Role | None
    shop_name: str | None = Field(description="sellers only")


class LastMessage(ResponseBody):
    text: str | None
    sender_id: str | None
    created_at: datetime | None


class ConversationSummary(ResponseBody):
    conversation_id: str
    other_party: Party
    last_message: LastMessage
    unread_count: int = Field(ge=0)


class ConversationList(ResponseBody):
    conversations: list[ConversationSummary]
    pagination: Pagination


class ConversationPage(ResponseBody):
    conversation_id: str
    other_party: Party
    messages: list[Message] = Field(description="oldest first")
    unread_count: int = Field(ge=0)
    pagination: Pagination


class NotificationList(ResponseBody):
    notifications: list[Notification]
    pagination: Pagination


class NotificationRead(ResponseBody):
    notification_id: str
    read: bool


# --- orders ---------------------------------------------------------------------------------
class PostalAddress(ResponseBody):
    name: str
    phone: str
    street: str
    city: str
    district: str
    postal_code: str
    country: str


class OrderItem(ResponseBody):
    order_item_id: str
    product_id: str
    seller_id: str
    name: str
    quantity: int
    unit_price: Money
    selected_options: list[Any]
    subtotal: Money = Field(description="of the units not cancelled")
    cancelled_quantity: int | None = Field(
        default=None, description="units cancelled before shipping (once any were)"
    )


class Discount(Money):
    coupon_code: str | None
    points_redeemed: int = Field(
        default=0, ge=0, description="loyalty points spent on this discount (1 point = NT$1)"
    )


class ShippingCharge(Money):
    method: ShippingMethod


class CardInfo(ResponseBody):
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int


class PaymentReceipt(ResponseBody):
    number: str
    url: str


class PaymentDetails(ResponseBody):
    payment_id: str
    transaction_id: str | None
    method: PaymentMethod
    amount: Money
    card_info: CardInfo | None
    receipt: PaymentReceipt | None = None
    paid_at: datetime


class StatusChange(ResponseBody):
    status: OrderStatus
    timestamp: datetime
    notes: str | None = Field(default=None, description="an admin's PUT .../status notes")
    by: Literal["admin"] | None = Field(default=None, description="set for PUT .../status")


class StatusUpdate(ResponseBody):
    """The latest ``PUT .../status`` of the order (an admin's)."""

    status: OrderStatus
    notes: str
    notify_customer: bool
    at: datetime


class Cancellation(ResponseBody):
    reason: str
    cancelled_by: str
    notes: str


class CancelledUnit(ResponseBody):
    order_item_id: str
    product_id: str | None = None
    seller_id: str | None = None
    quantity: int
    amount: Money | None = Field(
        default=None, description="the units' value refunded (not in a seller's view)"
    )


class UnitCancellation(ResponseBody):
    """One ``PUT .../cancel`` with ``items``."""

    items: list[CancelledUnit]
    amount: Money | None = Field(default=None, description="not in a seller's view")
    refund_id: str | None
    reason: str
    cancelled_by: str
    notes: str
    cancelled_at: datetime


class RefundSummary(ResponseBody):
    refund_id: str | None = Field(description="null while a cancellation's refund is pending")
    amount: Money
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    processed_at: datetime | None = None
    transaction_id: str | None = None


class PaymentAttempt(ResponseBody):
    payment_id: str
    status: AttemptStatus
    transaction_id: str | None
    amount: Money
    method: PaymentMethod
    provider: str | None = Field(description="SANDBOX, ECPAY, ...")
    processed_at: datetime
    card_info: CardInfo | None
    receipt: PaymentReceipt | None = Field(default=None, description="COMPLETED attempts")
    failure_reason: str | None = Field(default=None, description="FAILED attempts")


class RefundLine(ResponseBody):
    order_item_id: str
    product_id: str
    quantity: int
    amount: Money
    reason: str


class Refund(ResponseBody):
    refund_id: str
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    amount: Money
    reason: str
    processed_at: datetime
    transaction_id: str | None
    items: list[RefundLine]


class Processing(ResponseBody):
    processed_at: datetime
    processed_by: str
    warehouse_id: str | None
    estimated_shipping_date: date | None
    notes: str
    sellers: list[str]


class ShipmentLocation(ResponseBody):
    city: str
    country: str


class Dimensions(ResponseBody):
    length: float
    width: float
    height: float
    unit: Literal["cm", "mm", "m", "in"]


class PackageInfo(ResponseBody):
    weight: float | None
    weight_unit: Literal["kg", "g", "lb"]
    dimensions: Dimensions | None


class ShipmentItem(ResponseBody):
    order_item_id: str
    product_id: str
    seller_id: str
    name: str
    quantity: int


class ShipmentEvent(ResponseBody):
    status: ShipmentStatus
    at: datetime
    location: ShipmentLocation | None
    notes: str


class Shipment(ResponseBody):
    shipment_id: str
    carrier: str = Field(description="a known carrier code (BLACK_CAT, HCT, ...) or a free name")
    tracking_number: str
    tracking_url: str | None
    status: ShipmentStatus
    shipped_at: datetime
    shipped_by: str
    shipping_date: date | None
    estimated_delivery: datetime
    package_info: PackageInfo | None
    notes: str
    items: list[ShipmentItem]
    current_location: ShipmentLocation | None
    updated_at: datetime
    history: list[ShipmentEvent]
    delivered_at: datetime | None = None


class InvoiceLine(ResponseBody):
    order_item_id: str
    product_id: str
    name: str
    quantity: int
    unit_price: Money
    subtotal: Money


class InvoiceRecipient(ResponseBody):
    name: str
    email: str | None
    tax_id: str | None = Field(description="統一編號 (eight digits) of a company buyer")


class Invoice(ResponseBody):
    invoice_id: str
    invoice_number: str = Field(description="Taiwan e-invoice form: track letters + 8 digits")
    order_id: str
    status: Literal["ISSUED", "VOID"]
    corrects: str | None = Field(
        default=None, description="a corrected invoice: the VOID invoice it replaces"
    )
    voided_at: datetime | None = None
    void_reason: str | None = Field(
        default=None, description="ORDER_CANCELLED, FULLY_REFUNDED, or the reason given"
    )
    items: list[InvoiceLine]
    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money
    created_at: datetime
    invoice_date: date
    due_date: date | None
    recipient_info: InvoiceRecipient | None
    notes: str
    order_version: int


class Order(ResponseBody):
    """The seeds/003 order document. A seller sees only its own items: then ``total`` and
    ``sellerSubtotal`` are its part, and the buyer's amounts, billing address, payments and
    refunds are left out."""

    order_id: str
    order_number: str
    user_id: str
    status: OrderStatus
    items: list[OrderItem]
    subtotal: Money | None = None
    discount: Discount | None = None
    tax: Money | None = None
    shipping: ShippingCharge | None = None
    total: Money
    seller_subtotal: Money | None = Field(default=None, description="a seller's view only")
    shipping_address: PostalAddress
    billing_address: PostalAddress | None = None
    payment_method: PaymentMethod
    payment_status: PaymentStatus
    payment_details: PaymentDetails | None = None
    payment_url: str | None = Field(
        default=None, description="BANK_TRANSFER and MOBILE_PAYMENT: the signed ECPay page"
    )
    fulfillment_status: FulfillmentStatus
    shipping_status: ShippingStatus
    timeline: list[StatusChange]
    estimated_delivery: datetime
    notes: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = Field(description="unpaid orders are cancelled then")
    cancelled_at: datetime | None
    cancellation: Cancellation | None
    last_status_update: StatusUpdate | None = Field(
        default=None, description="the latest PUT .../status (its notes also on the timeline)"
    )
    refund_status: RefundStatus
    refund_details: RefundSummary | None = None
    cancelled_amount: Money | None = Field(
        default=None, description="value of the units cancelled before shipping (once any were)"
    )
    unit_cancellations: list[UnitCancellation] | None = None
    payments: list[PaymentAttempt] | None = None
    refunds: list[Refund] | None = None
    processing: Processing | None
    shipments: list[Shipment]
    invoices: list[Invoice]
    delivered_at: datetime | None = None
    delivered_by: str | None = None
    version: int


class OrderSummary(ResponseBody):
    order_id: str
    order_number: str
    user_id: str
    status: OrderStatus
    total: Money = Field(description="for sellerId=me: the seller's part")
    created_at: datetime
    payment_status: PaymentStatus
    shipping_status: ShippingStatus
    payment_method: PaymentMethod
    seller_subtotal: Money | None = Field(default=None, description="sellerId lists only")


class OrderList(ResponseBody):
    orders: list[OrderSummary]
    pagination: Pagination


class OrderEvent(ResponseBody):
    position: int
    version: int
    type: str = Field(description="Placed, PaymentCompleted, Cancelled, ShipmentCreated, ...")
    at: datetime
    actor: str | None
    correlation_id: str | None
    data: dict[str, Any]


class OrderTimeline(ResponseBody):
    order_id: str
    events: list[OrderEvent]


class OrderStatusChanged(ResponseBody):
    order_id: str
    status: OrderStatus
    updated_at: datetime


class OrderCancelled(ResponseBody):
    """The order cancelled, or (with ``items``) some of its units: then ``status`` is what
    the order is now and ``cancelledItems`` the units."""

    order_id: str
    status: OrderStatus
    cancelled_at: datetime
    payment_status: PaymentStatus
    refund_status: RefundStatus
    refund_details: RefundSummary | None
    cancelled_items: list[CancelledUnit] | None = None


# --- payments -------------------------------------------------------------------------------
class Payment(ResponseBody):
    payment_id: str
    order_id: str
    status: AttemptStatus
    transaction_id: str | None
    amount: Money
    method: PaymentMethod
    card_info: CardInfo | None
    processed_at: datetime
    receipt: PaymentReceipt | None = Field(description="absolute URL of this payment")
    failure_reason: str | None = Field(default=None, description="FAILED attempts only")


class PaymentIntent(ResponseBody):
    """``POST .../payments`` with BANK_TRANSFER, MOBILE_PAYMENT or COD: no money has moved."""

    order_id: str
    status: Literal["PENDING"]
    amount: Money
    method: PaymentMethod
    payment_url: str | None = Field(
        description="BANK_TRANSFER and MOBILE_PAYMENT: the signed ECPay page to pay at"
    )
    expires_at: datetime | None = Field(description="unpaid orders are cancelled then")


class PaymentResult(RootModel[Payment | PaymentIntent]):
    """``POST .../payments``: a card payment (Payment), or the order's way to pay recorded
    (PaymentIntent: BANK_TRANSFER, MOBILE_PAYMENT, COD)."""


class PaymentWithReceipt(Payment):
    order_number: str
    provider: str | None


class PaymentList(ResponseBody):
    order_id: str
    payment_status: PaymentStatus
    payments: list[Payment]


class RefundResult(ResponseBody):
    refund_id: str
    order_id: str
    status: Literal["COMPLETED"]
    amount: Money
    reason: str
    processed_at: datetime
    transaction_id: str | None
    payment_status: PaymentStatus
    items: list[RefundLine]


class RefundList(ResponseBody):
    order_id: str
    payment_status: PaymentStatus
    refunds: list[Refund]


# --- fulfilment -----------------------------------------------------------------------------
class OrderProcessed(ResponseBody):
    order_id: str
    status: OrderStatus
    fulfillment_status: Literal["PROCESSING"]
    processed_at: datetime
    processed_by: str
    estimated_shipping_date: date | None
    warehouse_id: str | None


class ShipmentCreated(ResponseBody):
    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None
    status: Literal["SHIPPED"]
    shipped_at: datetime
    shipped_by: str
    estimated_delivery: datetime
    items: list[ShipmentItem]
    order_status: OrderStatus


class ShipmentList(ResponseBody):
    order_id: str
    shipping_status: ShippingStatus
    shipments: list[Shipment]


class ShipmentStatusChanged(ResponseBody):
    shipment_id: str
    order_id: str
    status: ShipmentStatus
    updated_at: datetime
    current_location: ShipmentLocation | None
    notification_sent: bool
    order_status: OrderStatus
    all_delivered: bool


class ReceiptConfirmed(ResponseBody):
    order_id: str
    status: Literal["DELIVERED"]
    delivered_at: datetime


class InvoiceVoided(ResponseBody):
    invoice_id: str
    invoice_number: str
    order_id: str
    status: Literal["VOID"]
    voided_at: datetime
    void_reason: str


class InvoiceList(ResponseBody):
    order_id: str
    invoices: list[Invoice] = Field(description="oldest first; at most one is ISSUED")


# --- operations -----------------------------------------------------------------------------
class Liveness(ResponseBody):
    status: Literal["ok"]


class Check(ResponseBody):
    ok: bool
    error: str | None = Field(default=None, description="the exception's class when not ok")


class ProjectionsCheck(ResponseBody):
    ok: bool
    head: int = Field(description="the event store's last position")
    lag: dict[str, int] = Field(description="events each projection is behind")
    max_lag: int


class ReadinessChecks(ResponseBody):
    database: Check
    redis: Check | None = Field(default=None, description="when Redis is configured")
    projections: ProjectionsCheck | None = Field(
        default=None, description="when the database is reachable"
    )


class Readiness(ResponseBody):
    status: Literal["ready", "unavailable"]
    checks: ReadinessChecks
