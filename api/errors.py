"""The one table from domain errors to HTTP status and error code, and the error envelope."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aggregates.accounts import (
    AccountDisabled,
    AccountLocked,
    EmailNotVerified,
    InvalidToken,
    NotAllowed,
    SessionInvalid,
)
from aggregates.cart import CartLineNotFound
from aggregates.catalog import ListingRightsRequired, NotYourProduct, ProductNotFound
from aggregates.coupons import CouponNotApplicable
from aggregates.disputes import DisputeAlreadyExists, DisputeClosed, DisputeNotFound
from aggregates.errors import Conflict, DomainError, NotFound
from aggregates.inventory import InsufficientStock
from aggregates.invoices import TrackExhausted
from aggregates.loyalty import InsufficientPoints, PointsNotApplicable
from aggregates.messages import ConversationNotFound, MessageNotAllowed
from aggregates.orders import (
    CartEmpty,
    InvalidInvoiceStatus,
    InvalidOrderStatus,
    InvalidShipmentStatus,
    InvoiceAlreadyExists,
    InvoiceNotFound,
    OrderNotFound,
    ProductUnavailable,
    RefundFailed,
    ShipmentNotFound,
)
from aggregates.pricing import OrderLimitExceeded
from aggregates.returns import (
    InvalidReturnStatus,
    ReturnAlreadyExists,
    ReturnNotFound,
    ReturnWindowClosed,
)
from aggregates.reviews import (
    ReviewAlreadyExists,
    ReviewAlreadyReplied,
    ReviewNotEditable,
    ReviewNotFound,
)
from api.validation import domain_problems, pydantic_problems
from commands.errors import (
    ConcurrencyConflict,
    IdempotencyConflict,
    IdempotencyInFlight,
    InvalidIdempotencyKey,
)
from commands.messages import RecipientNotFound

log = logging.getLogger(__name__)

#: Most specific class first wins (looked up along the exception's MRO).
ERROR_TABLE: dict[type[DomainError], tuple[int, str]] = {
    DomainError: (400, "VALIDATION_ERROR"),
    NotFound: (404, "NOT_FOUND"),
    Conflict: (409, "CONFLICT"),
    ConcurrencyConflict: (409, "CONFLICT"),
    IdempotencyConflict: (422, "IDEMPOTENCY_CONFLICT"),
    IdempotencyInFlight: (409, "CONFLICT"),
    InvalidIdempotencyKey: (400, "VALIDATION_ERROR"),
    AccountLocked: (423, "ACCOUNT_LOCKED"),
    AccountDisabled: (403, "ACCOUNT_DISABLED"),
    EmailNotVerified: (403, "EMAIL_NOT_VERIFIED"),
    NotAllowed: (403, "FORBIDDEN"),
    InvalidToken: (400, "VALIDATION_ERROR"),
    SessionInvalid: (401, "UNAUTHORIZED"),
    ProductNotFound: (404, "PRODUCT_NOT_FOUND"),
    ListingRightsRequired: (403, "FORBIDDEN"),
    NotYourProduct: (403, "FORBIDDEN"),
    InsufficientStock: (422, "INSUFFICIENT_STOCK"),
    CartEmpty: (404, "NOT_FOUND"),
    CartLineNotFound: (404, "NOT_FOUND"),
    ProductUnavailable: (422, "PRODUCT_UNAVAILABLE"),
    OrderLimitExceeded: (422, "ORDER_LIMIT_EXCEEDED"),
    CouponNotApplicable: (400, "INVALID_COUPON"),
    PointsNotApplicable: (400, "INVALID_POINTS"),
    InsufficientPoints: (409, "INSUFFICIENT_POINTS"),
    OrderNotFound: (404, "ORDER_NOT_FOUND"),
    InvalidOrderStatus: (409, "INVALID_ORDER_STATUS"),
    RefundFailed: (422, "REFUND_FAILED"),
    ShipmentNotFound: (404, "SHIPMENT_NOT_FOUND"),
    InvalidShipmentStatus: (409, "CONFLICT"),
    InvoiceAlreadyExists: (409, "INVOICE_ALREADY_EXISTS"),
    InvoiceNotFound: (404, "INVOICE_NOT_FOUND"),
    InvalidInvoiceStatus: (409, "INVALID_INVOICE_STATUS"),
    TrackExhausted: (409, "CONFLICT"),
    ReviewNotFound: (404, "REVIEW_NOT_FOUND"),
    ReviewAlreadyExists: (409, "REVIEW_ALREADY_EXISTS"),
    ReviewAlreadyReplied: (409, "REVIEW_ALREADY_REPLIED"),
    ReviewNotEditable: (409, "REVIEW_NOT_EDITABLE"),
    ConversationNotFound: (404, "CONVERSATION_NOT_FOUND"),
    MessageNotAllowed: (403, "FORBIDDEN"),
    RecipientNotFound: (404, "USER_NOT_FOUND"),
    ReturnNotFound: (404, "RETURN_NOT_FOUND"),
    ReturnAlreadyExists: (409, "RETURN_ALREADY_EXISTS"),
    InvalidReturnStatus: (409, "INVALID_RETURN_STATUS"),
    ReturnWindowClosed: (409, "RETURN_WINDOW_CLOSED"),
    DisputeNotFound: (404, "DISPUTE_NOT_FOUND"),
    DisputeAlreadyExists: (409, "DISPUTE_ALREADY_EXISTS"),
    DisputeClosed: (409, "DISPUTE_CLOSED"),
}

_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    423: "ACCOUNT_LOCKED",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


_PROBLEM_KEYS = ("field", "problem", "message")


class ApiError(Exception):
    """An HTTP-level refusal raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def status_for(exc: DomainError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 400, "VALIDATION_ERROR"


def error_response(exc: DomainError) -> JSONResponse:
    status, code = status_for(exc)
    details = dict(exc.details)
    if code == "VALIDATION_ERROR":
        # The same shape as a body that failed to parse, so a form shows it by its field.
        details.setdefault("errors", domain_problems(exc))
    return JSONResponse(envelope(code, exc.message, details), status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            envelope(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = pydantic_problems(exc.errors())
        message = (
            f"{problems[0]['field']}: {problems[0]['message']}"
            if len(problems) == 1
            else f"the request has {len(problems)} problems"
        )
        # ``field`` names the first problem, as a rule error from a command does.
        details = {"field": problems[0]["field"], "errors": problems} if problems else {}
        if len(problems) == 1:  # its facts too (e.g. the banned keyword), as a command says them
            details.update({k: v for k, v in problems[0].items() if k not in _PROBLEM_KEYS})
        return JSONResponse(envelope("VALIDATION_ERROR", message, details), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return JSONResponse(
            envelope(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            envelope("INTERNAL_ERROR", "an unexpected error occurred; it has been logged"),
            status_code=500,
        )
