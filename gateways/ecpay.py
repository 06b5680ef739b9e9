"""ECPay (綠界) AIO checkout: the signed form, the page that posts it, and the payment notice.

The buyer's browser must POST the form to ECPay itself (``AioCheckOut/V5``), so the server only
builds the fields and a self-submitting page. ECPay then calls our ``ReturnURL`` server-side with
the result; ``parse_notice`` authenticates it. Both directions are signed with CheckMacValue
(EncryptType=1, SHA256), computed as ECPay's appendix "檢查碼機制" describes
(https://developers.ecpay.com.tw/?p=2902):

1. drop ``CheckMacValue``; sort the rest by name, case-insensitively; join as ``k=v`` with ``&``;
2. wrap as ``HashKey=<key>&...&HashIV=<iv>``;
3. URL-encode the way .NET's ``HttpUtility.UrlEncode`` does (space -> ``+``, ``-_.!*()`` kept,
   everything else, ``~`` included, as ``%xx``);
4. lowercase; 5. SHA256; 6. uppercase hex.

The MAC has no timestamp, so a captured notice can be replayed: callers de-duplicate on
(MerchantTradeNo, TradeNo), check TradeAmt against the order, and answer ``1|OK`` only after
their transaction commits. Unknown trades and amounts are the caller's to check: it knows the
orders; this module does not.

Pure: no I/O, no clock (the trade date is a parameter).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote_plus, urlsplit
from zoneinfo import ZoneInfo

STAGE_URL = "https://payment-stage.ecpay.com.tw/Cashier/AioCheckOut/V5"
PRODUCTION_URL = "https://payment.ecpay.com.tw/Cashier/AioCheckOut/V5"

TAIPEI = ZoneInfo("Asia/Taipei")
TRADE_DATE_FORMAT = "%Y/%m/%d %H:%M:%S"
CHOOSE_PAYMENTS = frozenset(
    {"ALL", "Credit", "WebATM", "ATM", "CVS", "BARCODE", "ApplePay", "TWQR", "BNPL"}
)
MAX_ITEM_NAME = 400
MAX_TRADE_DESC = 200
MAX_URL = 200
FULLWIDTH_HASH = "\uff03"

_TRADE_NO = re.compile(r"[A-Za-z0-9]{1,20}")
_INTEGER = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class ECPayConfig:
    """One merchant's credentials and where its checkout form posts to."""

    merchant_id: str
    hash_key: str = field(repr=False)
    hash_iv: str = field(repr=False)
    action_url: str = STAGE_URL


#: ECPay's public stage merchant (published for testing; never for real money).
TEST_MERCHANT = ECPayConfig(
    merchant_id="3002607",
    hash_key="pwFHCqoQZGmho4w6",
    hash_iv="EkRm7iFT261dpevs",
    action_url=STAGE_URL,
)


# --- CheckMacValue --------------------------------------------------------------------------
def net_url_encode(text: str) -> str:
    """URL-encode like .NET ``HttpUtility.UrlEncode`` (lowercase hex, ``-_.!*()`` kept)."""
    encoded = quote_plus(text, safe="!*()")  # quote_plus keeps -_.~ and turns space into +
    encoded = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)
    return encoded.replace("~", "%7e")  # .NET escapes ~; Python's quote leaves it alone


def mac_source(params: Mapping[str, str], hash_key: str, hash_iv: str) -> str:
    """Steps 1 and 2: the ``HashKey=..&k=v&..&HashIV=..`` string that gets encoded and hashed."""
    items = sorted(
        ((k, v) for k, v in params.items() if k != "CheckMacValue"),
        key=lambda kv: (kv[0].lower(), kv[0]),
    )
    return "&".join([f"HashKey={hash_key}", *(f"{k}={v}" for k, v in items), f"HashIV={hash_iv}"])


def check_mac_value(params: Mapping[str, str], hash_key: str, hash_iv: str) -> str:
    """ECPay's CheckMacValue (EncryptType=1: SHA256, uppercase hex) of ``params``."""
    encoded = net_url_encode(mac_source(params, hash_key, hash_iv)).lower()
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest().upper()


def verify_mac(params: Mapping[str, str], hash_key: str, hash_iv: str) -> bool:
    """True if ``params["CheckMacValue"]`` matches; compared in constant time."""
    given = params.get("CheckMacValue")
    if not isinstance(given, str) or any(not isinstance(v, str) for v in params.values()):
        return False
    expected = check_mac_value(params, hash_key, hash_iv)
    return hmac.compare_digest(expected.encode("ascii"), given.upper().encode("utf-8"))


# --- checkout form --------------------------------------------------------------------------
def _printable(name: str, value: object, max_len: int) -> str:
    """``value`` if it is a non-empty, single-line string of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise ValueError(f"{name} must be at most {max_len} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not contain control characters (newlines, tabs)")
    return value


def _url(name: str, value: object) -> str:
    value = _printable(name, value, MAX_URL)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError(f"{name} must be an absolute http(s) URL")
    return value


def _shown(name: object) -> object:
    if not isinstance(name, str):
        return name
    return "".join(c for c in name if not (ord(c) < 32 or ord(c) == 127))


def _item_name(item_names: Sequence[str]) -> str:
    if isinstance(item_names, str) or not item_names:
        raise ValueError("item_names must be a non-empty list of product names")
    # "#" separates lines on ECPay's page: a name containing it would be split in two, so it
    # becomes the full-width number sign. Product names are shown, not checked: control
    # characters (which the catalog keeps as typed) are dropped rather than refusing the page.
    names = [
        _printable("item name", _shown(n), MAX_ITEM_NAME).replace("#", FULLWIDTH_HASH)
        for n in item_names
    ]
    joined = "#".join(names)
    if len(joined) > MAX_ITEM_NAME:
        # ECPay would cut it anyway; cutting here keeps what we sign equal to what is shown.
        joined = joined[: MAX_ITEM_NAME - 3] + "..."
    return joined


#: ECPay's bounds: ATM codes 1-60 days, CVS codes 1 minute to 60 days.
ATM_EXPIRE_DAYS = (1, 60)
CVS_EXPIRE_MINUTES = (1, 60 * 24 * 60)


def code_expiry(pay_within: timedelta, choose_payment: str) -> dict[str, str]:
    """The AioCheckOut fields that make an ATM / CVS code lapse after ``pay_within`` (rounded
    up to ECPay's unit, clamped to its bounds)."""
    seconds = max(pay_within.total_seconds(), 0)
    days = min(max(math.ceil(seconds / 86400), ATM_EXPIRE_DAYS[0]), ATM_EXPIRE_DAYS[1])
    minutes = min(max(math.ceil(seconds / 60), CVS_EXPIRE_MINUTES[0]), CVS_EXPIRE_MINUTES[1])
    fields: dict[str, str] = {}
    if choose_payment in ("ATM", "ALL"):
        fields["ExpireDate"] = str(days)
    if choose_payment in ("CVS", "ALL"):
        fields["StoreExpireDate"] = str(minutes)
    if choose_payment == "ALL":
        fields["IgnorePayment"] = "BARCODE"
    return fields


def checkout_form(
    config: ECPayConfig,
    *,
    merchant_trade_no: str,
    trade_date: datetime,
    total_amount: int,
    trade_desc: str,
    item_names: Sequence[str],
    return_url: str,
    client_back_url: str | None = None,
    order_result_url: str | None = None,
    choose_payment: str = "ALL",
    pay_within: timedelta | None = None,
) -> dict[str, str]:
    """The signed AioCheckOut fields, in ECPay's names, ``CheckMacValue`` last.

    ``pay_within``: how long an ATM or convenience-store code may be paid, sent as ATM
    ``ExpireDate`` (whole days, rounded up, 1 to 60: ECPay's smallest unit is a day) and CVS
    ``StoreExpireDate`` (whole minutes, rounded up, 1 to 86,400); BARCODE, whose
    ``StoreExpireDate`` is read in days, is then left out (``IgnorePayment``).

    ``trade_date`` must be timezone-aware; it is sent in Asia/Taipei time. ``total_amount`` is
    whole TWD. ``return_url`` is the server-to-server notice URL; ``order_result_url`` is where
    ECPay posts the result from the buyer's browser, ``client_back_url`` its "back to the shop"
    link. Invalid input: ``ValueError``.
    """
    if not isinstance(merchant_trade_no, str) or not _TRADE_NO.fullmatch(merchant_trade_no):
        raise ValueError("merchant_trade_no must be 1 to 20 letters or digits (A-Z, a-z, 0-9)")
    if not isinstance(trade_date, datetime) or trade_date.utcoffset() is None:
        raise ValueError("trade_date must be a timezone-aware datetime")
    if isinstance(total_amount, bool) or not isinstance(total_amount, int) or total_amount <= 0:
        raise ValueError("total_amount must be a positive whole number of TWD")
    if choose_payment not in CHOOSE_PAYMENTS:
        raise ValueError(f"choose_payment must be one of {sorted(CHOOSE_PAYMENTS)}")
    fields = {
        "MerchantID": config.merchant_id,
        "MerchantTradeNo": merchant_trade_no,
        "MerchantTradeDate": trade_date.astimezone(TAIPEI).strftime(TRADE_DATE_FORMAT),
        "PaymentType": "aio",
        "TotalAmount": str(total_amount),
        "TradeDesc": _printable("trade_desc", trade_desc, MAX_TRADE_DESC),
        "ItemName": _item_name(item_names),
        "ReturnURL": _url("return_url", return_url),
        "ChoosePayment": choose_payment,
        "EncryptType": "1",
    }
    if client_back_url is not None:
        fields["ClientBackURL"] = _url("client_back_url", client_back_url)
    if order_result_url is not None:
        fields["OrderResultURL"] = _url("order_result_url", order_result_url)
    if pay_within is not None:
        fields.update(code_expiry(pay_within, choose_payment))
    fields["CheckMacValue"] = check_mac_value(fields, config.hash_key, config.hash_iv)
    return fields


def render_form_page(action_url: str, fields: Mapping[str, str]) -> str:
    """A self-contained HTML5 page that POSTs ``fields`` to ECPay on load (button as fallback)."""
    _url("action_url", action_url)
    esc = html.escape
    inputs = "\n".join(
        f'    <input type="hidden" name="{esc(str(k), quote=True)}" '
        f'value="{esc(str(v), quote=True)}">'
        for k, v in fields.items()
    )
    return f"""<!DOCTYPE html>
<html lang="zh-Hant">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>前往綠界付款 / Redirecting to ECPay</title>
</head>
<body>
  <form id="ecpay-checkout" method="post" action="{esc(action_url, quote=True)}">
{inputs}
    <button type="submit">前往綠界付款 / Pay with ECPay</button>
  </form>
  <noscript>
    <p>請按上方按鈕前往綠界付款。 / Please press the button above to pay with ECPay.</p>
  </noscript>
  <script>
    window.addEventListener("load", function () {{
      HTMLFormElement.prototype.submit.call(document.getElementById("ecpay-checkout"));
    }});
  </script>
</body>
</html>
"""


# --- payment notice -------------------------------------------------------------------------
class NoticeRejected(ValueError):
    """A notice that must not be acted on; ``reason`` goes back to ECPay as ``0|<reason>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """An authenticated payment result notice (ReturnURL callback)."""

    merchant_trade_no: str
    trade_no: str
    rtn_code: int
    rtn_msg: str
    trade_amt: int
    payment_type: str
    payment_date: str
    simulated: bool

    @property
    def paid(self) -> bool:
        """ECPay's RtnCode 1 means the payment succeeded; anything else is not a payment."""
        return self.rtn_code == 1


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise NoticeRejected(f"missing {name}")
    return value


def _integer(form: Mapping[str, str], name: str) -> int:
    value = _required(form, name)
    if not _INTEGER.fullmatch(value):
        raise NoticeRejected(f"{name} is not an integer")
    return int(value)


def parse_notice(form: Mapping[str, str], config: ECPayConfig, *, allow_simulated: bool) -> Notice:
    """Authenticate and read a notice, or raise ``NoticeRejected`` with a short reason.

    Checks, in order: CheckMacValue (constant time), MerchantID, required fields, SimulatePaid
    (ECPay's stage "simulate payment" button: accept it only where ``allow_simulated``).
    """
    if any(not isinstance(v, str) for v in form.values()):
        raise NoticeRejected("malformed notice")
    if not verify_mac(form, config.hash_key, config.hash_iv):
        raise NoticeRejected("CheckMacValue error")
    if form.get("MerchantID") != config.merchant_id:
        raise NoticeRejected("MerchantID mismatch")
    notice = Notice(
        merchant_trade_no=_required(form, "MerchantTradeNo"),
        trade_no=_required(form, "TradeNo"),
        rtn_code=_integer(form, "RtnCode"),
        rtn_msg=form.get("RtnMsg", ""),
        trade_amt=_integer(form, "TradeAmt"),
        payment_type=form.get("PaymentType", ""),
        payment_date=form.get("PaymentDate", ""),
        simulated=form.get("SimulatePaid", "0") == "1",
    )
    if notice.simulated and not allow_simulated:
        raise NoticeRejected("SimulatePaid not accepted")
    return notice
