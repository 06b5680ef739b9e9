"""Pages a person opens in a browser, not a client program: the email verification link and
the payment result ECPay sends the buyer back to. With ``SHOPLEDGER_FRONTEND_URL`` set, the
links lead to that front end instead and these pages redirect there."""

from __future__ import annotations

import hmac
import logging
from html import escape
from typing import Annotated
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aggregates.errors import DomainError
from api.deps import ContainerDep, reads
from api.routes.auth import VERIFY_PAGE, confirm_email
from api.routes.payments import (
    ECPAY_RESULT_PATH,
    RESULT_PAGE,
    ecpay_config,
    link_signature,
    payment_return_url,
)
from gateways.ecpay import verify_mac
from queries import orders as q

log = logging.getLogger(__name__)
router = APIRouter(tags=["pages"])

_HTML = {"text/html": {"schema": {"type": "string"}}}


def html_page(status: int, title: str, paragraphs: list[str], form: str = "") -> HTMLResponse:
    """A small self-contained page (no scripts, no outside assets); text is escaped here."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    page = (
        '<!DOCTYPE html><html lang="zh-Hant"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · shopledger</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
        "padding:0 1rem;color:#222}button{font-size:1rem;padding:.6rem 1.2rem}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}{form}</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


@router.get(
    VERIFY_PAGE,
    response_class=HTMLResponse,
    responses={
        200: {"description": "A page with one button that confirms", "content": _HTML},
        400: {"description": "The link is incomplete (a page)", "content": _HTML},
    },
)
def verify_email_page(token: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    """The email verification page the mail links to.

    One button confirms (a mail scanner that opens the link does not use up the token)."""
    if not token:
        return html_page(400, "Link incomplete", ["這個連結不完整 / This link is incomplete."])
    form = (
        f'<form method="post" action="{VERIFY_PAGE}">'
        f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'
        "<button type=submit>確認電子郵件 / Confirm my email</button></form>"
    )
    return html_page(200, "Confirm your email", ["請按下按鈕完成驗證。"], form)


@router.post(
    VERIFY_PAGE,
    response_class=HTMLResponse,
    responses={
        200: {"description": "The address is confirmed (a page)", "content": _HTML},
        400: {"description": "The link is unknown, used or expired (a page)", "content": _HTML},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"token": {"type": "string"}}}
                }
            },
        }
    },
)
async def verify_email_submit(request: Request, container: ContainerDep) -> HTMLResponse:
    """The verification page's button: confirms the address.

    Form-encoded ``token``; the answer says so in words."""
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")[:1000]))
    try:
        await run_in_threadpool(confirm_email, request, container, form.get("token", ""))
    except DomainError:
        return html_page(
            400,
            "Link expired",
            [
                "這個驗證連結無效、已使用或已過期。",
                "This verification link is unknown, used or expired; sign in and ask for a new one.",
            ],
        )
    return html_page(
        200, "Email confirmed", ["電子郵件已驗證，可以開始購物了。", "Your email is confirmed."]
    )


@router.post(
    ECPAY_RESULT_PATH + "/{order_id}",
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: {
            "description": "To the buyer's payment result page",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }
        }
    },
)
async def ecpay_result(order_id: str, request: Request, container: ContainerDep) -> Response:
    """ECPay's OrderResultURL: the buyer's browser comes back here after paying.

    ECPay's form is posted here and the browser sent on to the result page. Only ECPay's
    notice (ReturnURL) records payments."""
    raw = (await request.body())[:16_384]
    form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    config = ecpay_config(container.settings)
    genuine = config is not None and verify_mac(form, config.hash_key, config.hash_iv)
    outcome = ("paid" if form.get("RtnCode") == "1" else "failed") if genuine else None
    return RedirectResponse(payment_return_url(container, order_id, outcome), status_code=303)


@router.get(
    RESULT_PAGE,
    response_class=HTMLResponse,
    dependencies=[Depends(reads("orders"))],
    responses={
        200: {"description": "The order's payment state, in words", "content": _HTML},
        404: {"description": "Unknown order or wrong signature (a page)", "content": _HTML},
    },
)
def payment_result_page(
    container: ContainerDep,
    order_id: Annotated[str, Query(alias="orderId", max_length=64)] = "",
    sig: Annotated[str, Query(max_length=64)] = "",
    payment: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    """The payment result page the buyer lands on after ECPay.

    A signed link: no sign-in needed, and no other order."""
    try:
        canonical = str(UUID(order_id))
    except ValueError:
        canonical = ""
    expected = link_signature(container, canonical) if canonical else ""
    doc = q.get_order(container.engine, canonical) if expected else None
    if doc is None or not hmac.compare_digest(sig, expected):
        return html_page(404, "Order not found", ["找不到這筆訂單 / This order does not exist."])
    if doc["paymentStatus"] == "COMPLETED" or doc["status"] != "CREATED":
        said = ["付款完成，謝謝您的訂購！", f"Order {doc['orderNumber']} is paid."]
    elif payment == "paid":
        said = [
            "綠界已收到付款，訂單狀態稍後更新。",
            "ECPay took the payment; the order updates shortly.",
        ]
    elif payment == "failed":
        said = [
            "付款未完成，您可以再試一次。",
            "The payment did not go through; you can try again.",
        ]
    else:
        said = ["尚未收到付款。", f"Order {doc['orderNumber']} is waiting for payment."]
    return html_page(200, f"Order {doc['orderNumber']}", said)
