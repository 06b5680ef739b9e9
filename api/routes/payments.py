"""Payments and refunds (seeds/003 "訂單付款 API") and ECPay's all-in-one checkout.

Card payments: the card is checked (Luhn, expiry, CVV), the order is claimed for one attempt,
the gateway is asked outside any transaction, and the outcome is recorded. Only brand, last 4
digits and expiry are ever stored or logged; the number and CVV live in this request only.

ECPay (BANK_TRANSFER, MOBILE_PAYMENT): the order's ``paymentUrl`` (signed, so the buyer's
browser can open it without a bearer token) serves an auto-submitting form for ECPay's
AioCheckOut; ECPay's server notice is verified (CheckMacValue in constant time, merchant,
trade, amount) and answered ``1|OK`` only once the payment is committed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import Field, StrictBool, StrictInt

from aggregates.errors import DomainError
from aggregates.money import money
from aggregates.money import parse_money as money_rule
from aggregates.orders import CARD_METHODS, ONLINE_METHODS
from aggregates.taipei import TAIPEI
from api.auth import CurrentUser, Principal
from api.deps import (
    ContainerDep,
    Once,
    event_meta,
    path_id,
    reads,
    request_fingerprint_body,
    run_command,
)
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import (
    PaymentList,
    PaymentResult,
    PaymentWithReceipt,
    RefundList,
    RefundResult,
)
from api.routes.catalog import MoneyBody
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.application import EventMeta
from commands.orders import PendingRefund
from commands.payments import (
    CardPaymentOutcome,
    ChoosePaymentMethod,
    ECPayNoticeRejected,
    FinishCardPayment,
    RecordECPayNotice,
    RefundItem,
    RefundOrder,
    SettleRefund,
    StartCardPayment,
    ecpay_amount,
    trade_number,
)
from gateways import (
    PRODUCTION_URL,
    STAGE_URL,
    TEST_MERCHANT,
    CardError,
    CardGateway,
    ECPayConfig,
    NoticeRejected,
    ValidCard,
    checkout_form,
    parse_notice,
    render_form_page,
    validate_card,
)
from queries import orders as q
from shopledger.bootstrap import Container
from shopledger.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["payments"])
READS_ORDERS = [Depends(reads("orders"))]
NOTIFY_PATH = "/api/sales/payments/ecpay/notify"


# --- configuration --------------------------------------------------------------------------
def card_gateway(request: Request) -> CardGateway:
    """The card gateway: one given to the app, else the container's (the built-in sandbox,
    with its ledger, where it is allowed: outside production, or
    ``SHOPLEDGER_SANDBOX_CARDS=true``); 503 otherwise. The payment-recovery rule looks
    payments up at the container's gateway: one given to the app (tests) should share its
    books (see tests/e2e/test_payment_recovery_http.py)."""
    given = getattr(request.app.state, "card_gateway", None)
    if given is not None:
        return given  # type: ignore[no-any-return]
    container: Container = request.app.state.container
    if container.card_gateway is not None:
        return container.card_gateway
    raise ApiError(
        503, "SERVICE_UNAVAILABLE", "card payments are not available: no card gateway is configured"
    )


def ecpay_config(settings: Settings) -> ECPayConfig | None:
    """Our ECPay merchant; ECPay's public stage merchant outside production when none is set;
    None (ECPay off) in production without one."""
    url = PRODUCTION_URL if settings.ecpay_production else STAGE_URL
    if settings.ecpay_merchant_id:
        return ECPayConfig(
            settings.ecpay_merchant_id, settings.ecpay_hash_key, settings.ecpay_hash_iv, url
        )
    if settings.environment == "production":
        return None
    return ECPayConfig(
        TEST_MERCHANT.merchant_id, TEST_MERCHANT.hash_key, TEST_MERCHANT.hash_iv, STAGE_URL
    )


def _link_key(container: Container) -> bytes:
    # SHOPLEDGER_LINK_SECRET_FILE, not the JWT key: a key rotation must not break links sent.
    return hmac.new(container.link_secret, b"shopledger payment link", hashlib.sha256).digest()


def link_signature(container: Container, order_id: str) -> str:
    mac = hmac.new(_link_key(container), order_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def signed_payment_url(container: Container, path: str, order_id: str) -> str:
    return f"{container.settings.public_url}{path}?sig={link_signature(container, order_id)}"


#: ECPay's OrderResultURL (the buyer's browser posts the result there) and our own result page.
ECPAY_RESULT_PATH = "/api/sales/payments/ecpay/result"
RESULT_PAGE = "/payments/result"


def payment_return_url(container: Container, order_id: str, outcome: str | None = None) -> str:
    """Where a buyer's browser lands after ECPay: the front end's order page, or ours."""
    extra = {"payment": outcome} if outcome else {}
    frontend = container.settings.frontend_url
    if frontend:
        return f"{frontend}/orders/{order_id}" + (f"?{urlencode(extra)}" if extra else "")
    query = urlencode({"orderId": order_id, "sig": link_signature(container, order_id), **extra})
    return f"{container.settings.public_url}{RESULT_PAGE}?{query}"


# --- shapes ---------------------------------------------------------------------------------
class CardDetailsBody(RequestBody):
    number: str = Field(min_length=1, max_length=40)
    expiry_month: StrictInt
    expiry_year: StrictInt
    cvv: str = Field(min_length=1, max_length=8)
    holder_name: Text | None = Field(default=None, max_length=200)


class BillingAddressBody(RequestBody):
    name: Text | None = Field(default=None, max_length=100)
    phone: Text | None = Field(default=None, max_length=30)
    street: Text | None = Field(default=None, max_length=200)
    city: Text | None = Field(default=None, max_length=100)
    district: Text | None = Field(default=None, max_length=100)
    postal_code: Text | None = Field(default=None, max_length=20)
    country: Text | None = Field(default=None, max_length=100)


class PaymentDataBody(RequestBody):
    card_details: CardDetailsBody | None = None
    billing_address: BillingAddressBody | None = None


class PaymentBody(RequestBody):
    model_config = examples(
        {
            "paymentMethod": "CREDIT_CARD",
            "paymentData": {
                "cardDetails": {
                    "number": "4242424242424242",
                    "expiryMonth": 12,
                    "expiryYear": 2030,
                    "cvv": "123",
                    "holderName": "WANG XIAO MING",
                },
                "billingAddress": {
                    "name": "王小明",
                    "phone": "0912-345-678",
                    "street": "信義路五段7號",
                    "city": "台北市",
                    "district": "信義區",
                    "postalCode": "110",
                    "country": "TW",
                },
            },
            "amount": {"value": 1265.93, "currency": "TWD"},
        }
    )

    payment_method: Literal["CREDIT_CARD", "DEBIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT", "COD"]
    payment_data: PaymentDataBody | None = None
    amount: MoneyBody


class RefundItemBody(RequestBody):
    order_item_id: str = Field(min_length=1, max_length=80)
    quantity: StrictInt = Field(ge=1, le=1_000_000)
    reason: MultilineText = Field(default="", max_length=500)


class RefundBody(RequestBody):
    model_config = examples(
        {
            "reason": "商品瑕疵",
            "refundItems": [
                {
                    "orderItemId": "0b5e4a8e-6f0c-4d5e-9a51-2f3c8d7e6b10-1",
                    "quantity": 1,
                    "reason": "外盒破損",
                }
            ],
        },
        {"reason": "運費補償", "amount": {"value": 60, "currency": "TWD"}},
        {"reason": "訂單全額退款", "isFullRefund": True},
    )

    reason: MultilineText = Field(min_length=1, max_length=500)
    amount: MoneyBody | None = None
    is_full_refund: StrictBool = False
    refund_items: list[RefundItemBody] = Field(default_factory=list, max_length=100)


def parse_money(body: MoneyBody, field: str = "amount") -> Decimal:
    """The amount of a Money body, by the one Money rule (checked already while parsing)."""
    return money_rule(body.value, body.currency, field)


def _card(body: PaymentBody) -> ValidCard:
    details = body.payment_data.card_details if body.payment_data else None
    if details is None:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "paymentData.cardDetails is required for card payments",
            {"field": "paymentData.cardDetails"},
        )
    try:
        return validate_card(
            details.number,
            details.expiry_month,
            details.expiry_year,
            details.cvv,
            details.holder_name,
            today=datetime.now(TAIPEI).date(),
        )
    except CardError as exc:
        raise ApiError(
            400, "VALIDATION_ERROR", exc.message, {"field": f"paymentData.{exc.field}"}
        ) from None


def _payment_response(
    order_id: str, payment: dict[str, Any], container: Container
) -> dict[str, Any]:
    receipt = payment.get("receipt")
    return {
        "paymentId": payment["paymentId"],
        "orderId": order_id,
        "status": payment["status"],
        "transactionId": payment["transactionId"],
        "amount": payment["amount"],
        "method": payment["method"],
        "cardInfo": payment.get("cardInfo"),
        "processedAt": payment["processedAt"],
        "receipt": None
        if receipt is None
        else {**receipt, "url": container.settings.public_url + receipt["url"]},
        **({"failureReason": payment["failureReason"]} if "failureReason" in payment else {}),
    }


# --- card payments --------------------------------------------------------------------------
@router.post(
    "/api/sales/orders/{order_id}/payments",
    response_model=None,
    responses=documented(
        PaymentResult,
        errors={
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "CONFLICT"),
            422: "PAYMENT_FAILED",
            503: "SERVICE_UNAVAILABLE",
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def pay(
    order_id: str,
    body: PaymentBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Pay an order, by any of the five methods.

    CREDIT_CARD / DEBIT_CARD: charged through the card gateway (the built-in sandbox by
    default); a declined card is 422 ``PAYMENT_FAILED`` and stays on the order as a FAILED
    attempt. BANK_TRANSFER / MOBILE_PAYMENT: answered PENDING with the signed ECPay
    ``paymentUrl`` to pay at. COD: answered PENDING; the order is paid to the carrier (it no
    longer expires unpaid, and may be processed at once). Each may change the way an unpaid,
    unprocessed order is paid, except: a COD order is not moved to ECPay (409 ``COD_ORDER``;
    a card still pays it), and an ECPay order is not paid by card (400: ECPay may have issued
    an ATM or store code already). The amount must equal the amount due (the order's total,
    less units cancelled before payment); a paid or
    cancelled order is 409."""
    oid = path_id(order_id, "ORDER_NOT_FOUND", "order")
    amount = parse_money(body.amount)
    if body.payment_method not in CARD_METHODS:
        return _record_intent(oid, body, amount, principal, request, container)
    card = _card(body)
    info = card.public_info()
    # The fingerprint never sees the card number or CVV: brand and last 4 stand for them.
    masked = request_fingerprint_body(body)
    masked["paymentData"]["cardDetails"] = info
    gateway = card_gateway(request)
    once = Once(request, container, masked)
    if once.replay is not None:
        return once.replay
    meta = event_meta(request)
    with once:
        payment_id = str(uuid4())
        container.bus.execute(
            StartCardPayment(
                oid, principal.account_id, payment_id, body.payment_method, amount, info
            ),
            meta,
        )
        try:
            result = gateway.charge(payment_id, card, amount, "TWD")
            approved, transaction_id, code = (
                result.approved,
                result.transaction_id,
                result.decline_code,
            )
        except Exception:  # the gateway failed: the attempt is closed as failed, never left open
            log.exception(
                "card gateway error", extra={"orderId": order_id, "paymentId": payment_id}
            )
            approved, transaction_id, code = False, "", "gateway_error"

        def respond(outcome: CardPaymentOutcome) -> tuple[int, Any]:
            payment = outcome.payment
            if outcome.refund is not None:
                return 409, {
                    "error": {
                        "code": "INVALID_ORDER_STATUS",
                        "message": "the order was paid or cancelled while this payment ran; the money goes back to the card",
                        "details": {"paymentId": payment_id, "refundId": outcome.refund.refund_id},
                    }
                }
            if payment is None:
                return 422, {
                    "error": {
                        "code": "PAYMENT_FAILED",
                        "message": "the card was declined",
                        "details": {"paymentId": payment_id, "declineCode": code, "cardInfo": info},
                    }
                }
            entry = {
                **payment,
                "cardInfo": info,
                "amount": money(payment["amount"]),
                "processedAt": payment["at"].isoformat(),
                "receipt": {
                    "number": payment["receiptNumber"],
                    "url": f"/api/sales/orders/{order_id}/payments/{payment_id}",
                },
            }
            return 200, _payment_response(order_id, entry, container)

        finished = container.bus.execute(
            FinishCardPayment(
                oid, payment_id, body.payment_method, amount, info, approved, transaction_id, code
            ),
            meta,
            finalize=once.finalize(respond),
        )
    for pending in (finished.result.refund, finished.result.excess):
        if pending is not None:
            settle_refund_with_gateway(request, container, pending)
    return once.response(finished.position)


def _record_intent(
    oid: UUID,
    body: PaymentBody,
    amount: Decimal,
    principal: Principal,
    request: Request,
    container: Container,
) -> Response:
    if body.payment_data is not None and body.payment_data.card_details is not None:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"{body.payment_method} takes no card details",
            {"field": "paymentData.cardDetails"},
        )

    def respond(order: Any) -> tuple[int, Any]:
        url = None
        if order.payment_method in ONLINE_METHODS:
            url = signed_payment_url(container, f"/api/sales/orders/{order.id}/pay", str(order.id))
        return 200, {
            "orderId": str(order.id),
            "status": "PENDING",
            "amount": money(order.amount_due),
            "method": order.payment_method,
            "paymentUrl": url,
            "expiresAt": None if order.expires_at is None else order.expires_at.isoformat(),
        }

    command = ChoosePaymentMethod(oid, principal.account_id, body.payment_method, amount)
    return run_command(request, container, command, respond, body)


@dataclass(frozen=True)
class Settled:
    """How a held card refund ended."""

    transaction_id: str | None  # None: the gateway refused, the amount is refundable again
    position: int | None
    payment_status: str


def settle_refund_with_gateway(
    request: Request, container: Container, pending: PendingRefund, finalize_for: Any = None
) -> Settled:
    """Ask the card gateway to pay a held refund back and record its answer.
    ``finalize_for(transaction_id)`` gives a finalizer for the transaction recording a success
    (to store an Idempotency-Key answer)."""
    meta = EventMeta("system:card-gateway", event_meta(request).correlation_id, None)
    try:
        transaction_id = card_gateway(request).refund(
            pending.payment_transaction_id, pending.refund_id, pending.amount
        )
    except Exception as exc:  # noqa: BLE001 - any gateway failure is recorded as a failed refund
        log.warning(
            "card refund failed",
            extra={"orderId": str(pending.order_id), "refundId": pending.refund_id},
        )
        failed = container.bus.execute(
            SettleRefund(pending.order_id, pending.refund_id, None, type(exc).__name__), meta
        )
        return Settled(None, failed.position, failed.result.payment_status)
    done = container.bus.execute(
        SettleRefund(pending.order_id, pending.refund_id, transaction_id),
        meta,
        finalize=None if finalize_for is None else finalize_for(transaction_id),
    )
    return Settled(transaction_id, done.position, done.result.payment_status)


def _readable_order(container: Container, principal: Principal, order_id: str) -> dict[str, Any]:
    """Payments and refunds are for the buyer, admins and auditors; a seller of the order gets
    403; anyone else 404."""
    doc = q.get_order(container.engine, str(path_id(order_id, "ORDER_NOT_FOUND", "order")))
    if doc is not None:
        if principal.reads_all or doc["userId"] == principal.account_id:
            return doc
        if any(i["sellerId"] == principal.account_id for i in doc["items"]):
            raise ApiError(403, "FORBIDDEN", "an order's payments are for its buyer and admins")
    raise ApiError(404, "ORDER_NOT_FOUND", "order not found", {"orderId": order_id})


@router.get(
    "/api/sales/orders/{order_id}/payments",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(PaymentList, errors={403: "FORBIDDEN", 404: "ORDER_NOT_FOUND"}),
)
def list_payments(order_id: str, principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """Every payment attempt of the order, oldest first.

    COMPLETED and FAILED ones; for the buyer and admins."""
    doc = _readable_order(container, principal, order_id)
    return {
        "orderId": doc["orderId"],
        "paymentStatus": doc["paymentStatus"],
        "payments": [
            _payment_response(doc["orderId"], p, container) for p in doc.get("payments", [])
        ],
    }


@router.get(
    "/api/sales/orders/{order_id}/payments/{payment_id}",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(
        PaymentWithReceipt,
        errors={403: "FORBIDDEN", 404: ("ORDER_NOT_FOUND", "NOT_FOUND")},
    ),
)
def get_payment(
    order_id: str, payment_id: str, principal: CurrentUser, container: ContainerDep
) -> dict[str, Any]:
    """One payment and its receipt.

    The receipt URL of a payment points here."""
    doc = _readable_order(container, principal, order_id)
    for p in doc.get("payments", []):
        if p["paymentId"] == payment_id:
            return {
                **_payment_response(doc["orderId"], p, container),
                "orderNumber": doc["orderNumber"],
                "provider": p.get("provider"),
            }
    raise ApiError(404, "NOT_FOUND", "payment not found", {"paymentId": payment_id[:64]})


# --- refunds --------------------------------------------------------------------------------
@router.post(
    "/api/sales/orders/{order_id}/refunds",
    response_model=None,
    responses=documented(
        RefundResult,
        errors={
            403: "FORBIDDEN",
            404: "ORDER_NOT_FOUND",
            409: ("INVALID_ORDER_STATUS", "CONFLICT"),
            422: "REFUND_FAILED",
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def refund(
    order_id: str,
    body: RefundBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Refund an order in full, by amount or by items.

    ``isFullRefund``, ``amount``, or ``refundItems`` (their share of the goods after discount,
    with tax). Never more than paid minus refunded (422 ``REFUND_FAILED``);
    an unpaid order is 409. Admins, or a seller for its own items. The amount is held on the
    order first, then the card gateway pays it back (a racing refund cannot take it twice)."""
    amount = None if body.amount is None else parse_money(body.amount)
    command = RefundOrder(
        path_id(order_id, "ORDER_NOT_FOUND", "order"),
        principal.account_id,
        principal.has_role("admin"),
        str(uuid4()),
        body.reason,
        amount,
        body.is_full_refund,
        tuple(RefundItem(i.order_item_id, i.quantity, i.reason) for i in body.refund_items),
    )
    once = Once(request, container, request_fingerprint_body(body))
    if once.replay is not None:
        return once.replay

    def payload(answer: dict[str, Any]) -> tuple[int, Any]:
        items = [{**i, "amount": money(Decimal(i["amount"]))} for i in answer["items"]]
        return 200, {
            **answer,
            "amount": money(answer["amount"]),
            "processedAt": answer["processedAt"].isoformat(),
            "items": items,
        }

    with once:
        # settled at once (no card gateway involved): the answer is stored with the refund
        outcome = container.bus.execute(
            command,
            event_meta(request),
            finalize=once.finalize(
                lambda result: None if result[2] is not None else payload(result[1])
            ),
        )
        _, answer, pending = outcome.result
        if pending is None:
            return once.response(outcome.position)
        settled = settle_refund_with_gateway(
            request,
            container,
            pending,
            lambda tx: once.finalize(
                lambda order: payload(
                    {
                        **answer,
                        "status": "COMPLETED",
                        "paymentStatus": order.payment_status,
                        "transactionId": tx,
                    }
                )
            ),
        )
        if settled.transaction_id is None:
            raise ApiError(
                422,
                "REFUND_FAILED",
                "the card gateway refused the refund; nothing was refunded",
                {"refundId": pending.refund_id},
            )
    return once.response(settled.position)


@router.get(
    "/api/sales/orders/{order_id}/refunds",
    dependencies=READS_ORDERS,
    response_model=None,
    responses=documented(RefundList, errors={403: "FORBIDDEN", 404: "ORDER_NOT_FOUND"}),
)
def list_refunds(order_id: str, principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The order's refunds, oldest first (for the buyer and admins)."""
    doc = _readable_order(container, principal, order_id)
    return {
        "orderId": doc["orderId"],
        "paymentStatus": doc["paymentStatus"],
        "refunds": doc.get("refunds", []),
    }


# --- ECPay ----------------------------------------------------------------------------------
_HTML_PAGE: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
_ECPAY_NOTICE: dict[str, Any] = {
    "type": "object",
    "description": "ECPay's ReturnURL notice (its own field names); CheckMacValue signs it.",
    "properties": {
        name: {"type": "string"}
        for name in (
            "MerchantID",
            "MerchantTradeNo",
            "StoreID",
            "RtnCode",
            "RtnMsg",
            "TradeNo",
            "TradeAmt",
            "PaymentDate",
            "PaymentType",
            "PaymentTypeChargeFee",
            "TradeDate",
            "SimulatePaid",
            "CheckMacValue",
        )
    },
    "required": [
        "MerchantID",
        "MerchantTradeNo",
        "RtnCode",
        "TradeNo",
        "TradeAmt",
        "CheckMacValue",
    ],
    "examples": [
        {
            "MerchantID": "3002607",
            "MerchantTradeNo": "SL20261202243425A7",
            "RtnCode": "1",
            "RtnMsg": "交易成功",
            "TradeNo": "2612021234567890",
            "TradeAmt": "1266",
            "PaymentDate": "2026/12/02 10:15:30",
            "PaymentType": "ATM_TAISHIN",
            "TradeDate": "2026/12/02 10:05:12",
            "SimulatePaid": "0",
            "CheckMacValue": "6C51C9E6888DE861FD62FB1DD17029FC4B1FC4C1B3A8B1AE1AB4B5F8F0E4B59F",
        }
    ],
}


def _page(status: int, title: str, message: str) -> HTMLResponse:
    html = (
        '<!DOCTYPE html><html lang="zh-Hant"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1><p>{escape(message)}</p></body></html>"
    )
    return HTMLResponse(html, status_code=status)


@router.get(
    "/api/sales/orders/{order_id}/pay",
    response_class=HTMLResponse,
    dependencies=READS_ORDERS,
    responses={
        200: {"description": "A page that submits the signed AioCheckOut form to ECPay"},
        404: {"description": "Unknown order or wrong signature", "content": _HTML_PAGE},
        409: {"description": "Not an ECPay order, cancelled, or paid", "content": _HTML_PAGE},
        503: {"description": "ECPay is not available (a page)", "content": _HTML_PAGE},
    },
)
def ecpay_page(
    order_id: str,
    container: ContainerDep,
    sig: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The order's paymentUrl: the ECPay checkout page.

    A page that posts the signed AioCheckOut form to ECPay. The ``sig`` in the link is what
    lets the buyer's browser in (no bearer token there)."""
    try:
        canonical = str(UUID(order_id))
    except ValueError:
        return _page(404, "Order not found", "找不到這筆訂單 / This order does not exist.")
    if not hmac.compare_digest(sig.encode(), link_signature(container, canonical).encode()):
        return _page(404, "Order not found", "找不到這筆訂單 / This order does not exist.")
    doc = q.get_order(container.engine, canonical)
    if doc is None or doc["paymentMethod"] not in ONLINE_METHODS:
        # Signed, so it exists: the buyer came straight from checkout (or from choosing ECPay
        # on POST .../payments); let the view catch up before answering.
        container.wait_for(
            ["orders"],
            container.head_position(),
            container.settings.min_position_wait.total_seconds(),
        )
        doc = q.get_order(container.engine, canonical)
    if doc is None:
        return _page(404, "Order not found", "找不到這筆訂單 / This order does not exist.")
    if doc["paymentMethod"] not in ONLINE_METHODS:
        return _page(
            409,
            "Not an ECPay order",
            "這筆訂單不經綠界付款 / This order is not paid through ECPay.",
        )
    if doc["status"] == "CANCELLED":
        return _page(409, "Order cancelled", "訂單已取消 / This order has been cancelled.")
    if doc["paymentStatus"] not in ("PENDING", "FAILED"):
        return _page(409, "Already paid", "訂單已付款 / This order has been paid.")
    expires = None if doc.get("expiresAt") is None else datetime.fromisoformat(doc["expiresAt"])
    if expires is not None and expires <= datetime.now(UTC):  # the expiry rule is due
        return _page(409, "Order expired", "訂單已逾期未付款 / This order was not paid in time.")
    config = ecpay_config(container.settings)
    if config is None:
        return _page(503, "ECPay unavailable", "ECPay is not configured on this server.")
    public = container.settings.public_url
    attempt = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(2))
    try:
        fields = checkout_form(
            config,
            merchant_trade_no=trade_number(doc["orderNumber"], attempt),
            trade_date=datetime.now(UTC),
            total_amount=ecpay_amount(Decimal(str(doc["total"]["value"]))),
            trade_desc=f"shopledger order {doc['orderNumber']}",
            item_names=[
                f"{i['name']} x {left}"
                for i in doc["items"]
                if (left := int(i["quantity"]) - int(i.get("cancelledQuantity", 0))) > 0
            ],
            return_url=public + NOTIFY_PATH,
            client_back_url=payment_return_url(container, canonical),
            order_result_url=f"{public}{ECPAY_RESULT_PATH}/{canonical}",
            choose_payment="ATM" if doc["paymentMethod"] == "BANK_TRANSFER" else "ALL",
            # An ATM or store code must not outlive the order (it expires unpaid then).
            pay_within=None if expires is None else expires - datetime.now(UTC),
        )
    except ValueError:
        log.exception("ecpay form could not be built", extra={"orderId": canonical})
        return _page(
            503,
            "ECPay unavailable",
            "目前無法前往綠界付款 / ECPay checkout is not available for this order.",
        )
    return HTMLResponse(render_form_page(config.action_url, fields))


@router.post(
    NOTIFY_PATH,
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "``1|OK`` once recorded (or a repeat); ``0|<reason>`` when refused",
            "content": {"text/plain": {"schema": {"type": "string", "examples": ["1|OK"]}}},
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _ECPAY_NOTICE}},
        }
    },
)
async def ecpay_notify(request: Request) -> PlainTextResponse:
    """ECPay's server-to-server payment notice.

    Form-encoded. ``1|OK`` once the payment (or the
    failed attempt) is committed, or for a repeat of a notice already recorded; ``0|reason``
    and nothing recorded for a forged MAC, another merchant, an unknown trade or a wrong
    amount (ECPay shows the reason and retries)."""
    container: Container = request.app.state.container
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > 16_384:
        return PlainTextResponse("0|request too large")
    raw = await request.body()
    if len(raw) > 16_384:
        return PlainTextResponse("0|request too large")
    try:
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError:
        return PlainTextResponse("0|not UTF-8")
    config = ecpay_config(container.settings)
    if config is None:
        return PlainTextResponse("0|ECPay is not configured")
    try:
        notice = parse_notice(
            form, config, allow_simulated=container.settings.environment == "development"
        )
    except NoticeRejected as exc:
        log.warning(
            "ecpay notice rejected",
            extra={"reason": exc.reason, "merchantTradeNo": form.get("MerchantTradeNo", "")[:20]},
        )
        return PlainTextResponse(f"0|{exc.reason}")
    command = RecordECPayNotice(
        notice.merchant_trade_no,
        notice.trade_no,
        notice.paid,
        notice.trade_amt,
        notice.payment_type,
        notice.rtn_msg,
        str(uuid4()),
    )
    meta = EventMeta("system:ecpay", event_meta(request).correlation_id, None)
    try:
        outcome = await run_in_threadpool(container.bus.execute, command, meta)
    except ECPayNoticeRejected as exc:
        log.warning(
            "ecpay notice rejected",
            extra={"reason": exc.message, "merchantTradeNo": notice.merchant_trade_no},
        )
        return PlainTextResponse(f"0|{exc.message}")
    except DomainError as exc:
        log.warning(
            "ecpay notice refused",
            extra={"reason": exc.message, "merchantTradeNo": notice.merchant_trade_no},
        )
        return PlainTextResponse(f"0|{exc.message}")
    log.info(
        "ecpay notice",
        extra={
            "merchantTradeNo": notice.merchant_trade_no,
            "tradeNo": notice.trade_no,
            "paid": notice.paid,
            "new": bool(outcome.result),
        },
    )
    response = PlainTextResponse("1|OK")
    if outcome.position is not None:
        response.headers["X-Event-Position"] = str(outcome.position)
    return response
