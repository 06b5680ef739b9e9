"""The sales dashboard: one server-rendered page for admins and sellers, charts as inline SVG.

``GET /dashboard`` shows an admin the whole platform (or one seller with ``?sellerId=``) and a
seller its own shop, always: revenue and orders today, in 7 and in 30 days against the period
before, revenue by day, top products, the conversion funnel, shipping performance, the
low-stock list and one product's price history (``?productId=``, default the top product).
Everything is read from the read models (queries/analytics.py, queries/catalog.py,
queries/accounts.py) and waits, like every API query, for the caller's own last write.

Signing in: the page's form posts to ``POST /dashboard/login``, which runs the API's own login
(``POST /api/auth/login`` in cookie mode: the same account, password, lockout and session
checks) and sends the browser back to the page with the ``sl_access``/``sl_refresh``/``sl_csrf``
cookies. The page authenticates with ``sl_access`` through :func:`api.auth.current_principal`
(token, account active, session valid). Signing out posts the CSRF token (the ``sl_csrf``
cookie's value, in a hidden field) to ``POST /dashboard/logout``, which ends the session.

No script at all (``script-src 'none'``), no outside asset; every text is escaped.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from aggregates.taipei import TAIPEI, local_date
from api import charts
from api.auth import (
    CSRF_COOKIE,
    Principal,
    clear_auth_cookies,
    csrf_hash,
    current_principal,
    load_account,
)
from api.consistency import note_caller
from api.deps import ACCESS_COOKIE, ContainerDep, reads
from api.errors import ApiError
from api.routes import auth as auth_routes
from commands.credentials import InvalidJWT
from queries import accounts as accounts_q
from queries import analytics as q
from queries import catalog as catalog_q
from queries.common import PageRequest
from shopledger.bootstrap import Container

router = APIRouter(tags=["pages"])

PATH = "/dashboard"
LOGIN_PATH = "/dashboard/login"
LOGOUT_PATH = "/dashboard/logout"
#: The page has no script; styles are inline; forms post to this origin only.
CSP = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'"
)
READS = reads(
    "sales_report", "funnel", "shipping_perf", "stock_alerts", "inventory", "catalog", "accounts"
)
#: Query parameters the sign-in form carries over to the page it leads back to.
KEPT_PARAMS = ("sellerId", "productId")
MAX_FORM_BYTES = 8192
LOW_STOCK_ROWS = 20
PERIODS = ((1, "今日 Today"), (7, "近 7 日 · 7 days"), (30, "近 30 日 · 30 days"))

_HTML = {"text/html": {"schema": {"type": "string"}}}
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
}
_REDIRECT = {
    "description": "Back to the dashboard",
    "headers": {"Location": {"schema": {"type": "string"}}},
}


# --- the page frame -------------------------------------------------------------------------
STYLE = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI","Noto Sans TC","PingFang TC",
"Microsoft JhengHei","Droid Sans Fallback",sans-serif;color:#1f2937;background:#f3f4f6;
font-size:15px;line-height:1.45}
header.top{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem 1rem;
padding:.7rem 1.5rem;background:#111827;color:#f9fafb}
header.top .brand{font-weight:700;font-size:1.05rem}
header.top .brand span{font-weight:400;opacity:.75;margin-left:.5rem}
header.top .who{display:flex;flex-wrap:wrap;align-items:center;gap:.8rem;font-size:.9rem;
overflow-wrap:anywhere}
header.top form{margin:0}
header.top button{background:#374151;color:#f9fafb;border:1px solid #4b5563;border-radius:6px;
padding:.35rem .8rem;font-size:.85rem;cursor:pointer}
main{max-width:1200px;margin:0 auto;padding:1.2rem 1.5rem 3rem}
main.narrow{max-width:26rem;padding-top:3rem}
h1{font-size:1.5rem;margin:.2rem 0}
h2{font-size:1rem;margin:0 0 .6rem;color:#374151}
.muted{color:#6b7280;font-size:.85rem}
.scope{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:1rem;
margin-bottom:1rem}
.card{background:#fff;border-radius:10px;padding:1rem 1.2rem;box-shadow:0 1px 2px #0000001a;
margin-bottom:1rem;min-width:0}
.grid3{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:1rem;margin-bottom:1rem}
.grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1rem}
.grid3 .card,.grid2 .card{margin-bottom:0}
.grid2{margin-bottom:1rem}
@media (max-width:800px){.grid3,.grid2{grid-template-columns:1fr}}
.kpi .big{font-size:1.7rem;font-weight:700;margin:.1rem 0}
.kpi p{margin:.15rem 0}
.up{color:#047857}.down{color:#b91c1c}.flat{color:#6b7280}
.up,.down,.flat{white-space:nowrap;font-weight:600}
.headline{display:flex;align-items:baseline;gap:.6rem;flex-wrap:wrap}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .4rem;border-bottom:1px solid #e5e7eb;vertical-align:middle}
th{color:#6b7280;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.name{max-width:16rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
form.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:0}
select,input{font-size:.95rem;padding:.4rem .5rem;border:1px solid #d1d5db;border-radius:6px;
max-width:100%}
button{font-size:.95rem;padding:.45rem 1rem;border-radius:6px;border:1px solid #1d4ed8;
background:#2563eb;color:#fff;cursor:pointer}
form.signin label{display:block;margin:.8rem 0 .25rem;font-weight:600}
form.signin input{width:100%}
form.signin button{margin-top:1.2rem;width:100%;padding:.6rem}
.notice{background:#fef3c7;border:1px solid #f59e0b;border-radius:8px;padding:.6rem .8rem}
.error{background:#fee2e2;border:1px solid #ef4444;border-radius:8px;padding:.6rem .8rem}
.chart{display:block;height:auto;font-size:12px;min-width:500px}
.card{overflow-x:auto}
.meter .chart{min-width:0}
.chart text{fill:#374151}
.chart .tick{fill:#6b7280;font-size:11px}
.chart .grid{stroke:#e5e7eb}
.chart .axis{stroke:#9ca3af}
.chart .line{fill:none;stroke:#2563eb;stroke-width:2.5;stroke-linejoin:round}
.chart .line.step{stroke:#7c3aed}
.chart .area{fill:#2563eb1f}
.chart .dot{fill:#2563eb;stroke:#fff;stroke-width:1.5}
.chart .bar{fill:#3b82f6}
.chart .funnel-step{fill:#0ea5e9}
.chart .track{fill:#e5e7eb}
.chart .rate{fill:#4b5563;font-size:12px;font-weight:600}
.chart .empty{fill:#9ca3af;font-size:14px}
.chart .value{font-variant-numeric:tabular-nums}
dl.figures{display:grid;grid-template-columns:minmax(0,1fr) auto;gap:.45rem 1rem;margin:0}
dl.figures dt{color:#4b5563}
dl.figures dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
.meter{width:240px;max-width:100%}
"""


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def _page(
    status: int,
    title: str,
    main: str,
    *,
    who: Principal | None = None,
    csrf: str = "",
    narrow: bool = False,
) -> HTMLResponse:
    """The frame around every answer of this module; ``title`` is plain text, ``main`` markup
    whose texts the caller escaped."""
    account = ""
    if who is not None:
        name = who.account.email or who.account.username
        account = (
            f'<div class="who"><span>{escape(name)} · {escape(who.account.role)}</span>'
            f"{_logout_form(csrf)}</div>"
        )
    html = (
        '<!DOCTYPE html><html lang="zh-Hant"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · shopledger</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{STYLE}</style></head><body>"
        '<header class="top"><div class="brand">shopledger<span>銷售儀表板 · Sales dashboard'
        f"</span></div>{account}</header>"
        f'<main class="{"narrow" if narrow else "wide"}">{main}</main></body></html>'
    )
    return HTMLResponse(html, status_code=status, headers=_headers())


def _logout_form(csrf: str) -> str:
    return (
        f'<form method="post" action="{LOGOUT_PATH}" class="logout">'
        f'<input type="hidden" name="csrf" value="{escape(csrf, quote=True)}">'
        '<button type="submit">登出 · Sign out</button></form>'
    )


def _sign_in(
    status: int, problem: str | None = None, email: str = "", next_query: str = ""
) -> HTMLResponse:
    message = f'<p class="error" role="alert">{escape(problem)}</p>' if problem else ""
    form = (
        f"<h1>登入 · Sign in</h1>"
        '<p class="muted">The sales dashboard is for admins and sellers.</p>'
        f"{message}"
        f'<form class="signin" method="post" action="{LOGIN_PATH}">'
        '<label for="email">Email 或帳號 · Email or username</label>'
        f'<input id="email" name="email" type="text" autocomplete="username" required '
        f'maxlength="320" value="{escape(email, quote=True)}">'
        '<label for="password">密碼 · Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required maxlength="1024">'
        f'<input type="hidden" name="next" value="{escape(next_query, quote=True)}">'
        '<button type="submit">登入 · Sign in</button></form>'
    )
    return _page(status, "Sign in", form, narrow=True)


def _refusal(status: int, title: str, lines: Sequence[str], who: Principal, csrf: str) -> Response:
    body = f"<h1>{escape(title)}</h1>" + "".join(f"<p>{escape(line)}</p>" for line in lines)
    return _page(status, title, body, who=who, csrf=csrf, narrow=True)


# --- who is asking --------------------------------------------------------------------------
def _presents_token(request: Request) -> bool:
    return bool(request.cookies.get(ACCESS_COOKIE) or request.headers.get("Authorization"))


def _viewer(request: Request, container: Container) -> tuple[Principal | None, str | None]:
    """The signed-in caller (the API's own checks), or None and why not."""
    if not _presents_token(request):
        return None, None
    try:
        return current_principal(request, container), None
    except ApiError as exc:
        if exc.code == "ACCOUNT_DISABLED":
            return None, "這個帳號已停用 · This account is disabled."
        return None, "登入已失效，請重新登入 · Your session has ended; please sign in again."


class _CsrfRefused(Exception):
    pass


def _form_principal(request: Request, container: Container, csrf: str) -> Principal | None:
    """The cookie session a form post comes from, with its CSRF token checked (the form's
    field, the ``sl_csrf`` cookie and the token's hash bound into the JWT must all agree);
    None when there is no live session."""
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        return None
    try:
        claims = container.tokens.verify(token, "access")
    except InvalidJWT:
        return None
    account = load_account(container, claims.sub)
    if account is None or not account.session_valid(claims.sid, container.bus.clock()):
        return None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if (
        not csrf
        or not cookie
        or claims.csrf is None
        or not hmac.compare_digest(csrf, cookie)
        or not hmac.compare_digest(csrf_hash(csrf), claims.csrf)
    ):
        raise _CsrfRefused
    request.state.actor = claims.sub
    note_caller(claims.sub)
    return Principal(claims.sub, claims.role, claims.sid, True, account)


def _same_origin(request: Request) -> bool:
    """A form post from one of our own pages (browsers say where a post comes from; a
    client that says nothing is not a browser tricked by another site)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("Host", "")


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body())[:MAX_FORM_BYTES]
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _kept_query(raw: str) -> str:
    """``?sellerId=…&productId=…`` from a query string (nothing else: no open redirect)."""
    kept = [(k, v[:64]) for k, v in parse_qsl(raw[:512]) if k in KEPT_PARAMS and v]
    return f"?{urlencode(kept)}" if kept else ""


# --- formatting -----------------------------------------------------------------------------
def _value(m: dict[str, Any]) -> float:
    return float(m["value"])


def twd(amount: float) -> str:
    if amount == int(amount):
        return f"NT${int(amount):,}"
    return f"NT${amount:,.2f}"


def _change(percent: float | None) -> str:
    if percent is None:
        return '<span class="flat" title="nothing in the period before">—</span>'
    if percent > 0:
        return f'<span class="up" title="vs. the period before">▲ {percent:.1f}%</span>'
    if percent < 0:
        return f'<span class="down" title="vs. the period before">▼ {abs(percent):.1f}%</span>'
    return '<span class="flat">± 0%</span>'


def _share(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _hours(hours: int | None) -> str:
    if hours is None:
        return "—"
    if hours >= 48:
        return f"{hours / 24:.1f} 天 d ({hours} h)"
    return f"{hours} 小時 h"


def _taipei(iso_at: str) -> datetime:
    return datetime.fromisoformat(iso_at).astimezone(TAIPEI)


# --- the sections ---------------------------------------------------------------------------
def _kpis(sales: dict[int, dict[str, Any]]) -> str:
    cards = []
    for days, title in PERIODS:
        s = sales[days]
        prev = s["previous"]
        period = s["period"]
        span = period["fromDate"] if days == 1 else f"{period['fromDate']} – {period['toDate']}"
        change = s["change"]
        before = s["previousPeriod"]
        cards.append(
            f'<section class="card kpi" data-period="{days}">'
            f"<h2>{escape(title)}</h2>"
            f'<p class="muted">{escape(span)}</p>'
            f'<div class="headline"><p class="big revenue" data-value="{_value(s["revenue"])}">'
            f"{escape(twd(_value(s['revenue'])))}</p>{_change(change['revenuePercent'])}</div>"
            f'<p><b class="orders" data-value="{s["orders"]}">{s["orders"]:,}</b> 筆訂單 orders '
            f"{_change(change['ordersPercent'])}</p>"
            f'<p class="muted" title="{before["fromDate"]} – {before["toDate"]}">'
            f"前期 before: {escape(twd(_value(prev['revenue'])))} · {prev['orders']:,} orders</p>"
            "</section>"
        )
    return f'<div class="grid3">{"".join(cards)}</div>'


def _revenue_chart(month: dict[str, Any]) -> str:
    points = [
        charts.Point(
            row["period"][5:],
            _value(row["revenue"]),
            f"{row['period']}: {twd(_value(row['revenue']))} · {row['orders']} 筆訂單 orders",
        )
        for row in month["series"]
    ]
    svg = charts.line_chart("revenue", "Revenue by day, last 30 days", points, twd)
    return f'<section class="card"><h2>近 30 日每日營收 · Revenue by day</h2>{svg}</section>'


def _top_products(month: dict[str, Any]) -> str:
    bars = [
        charts.Bar(
            p["name"] or p["productId"],
            _value(p["revenue"]),
            f"{twd(_value(p['revenue']))} · {p['quantity']} 件",
            f"{p['name']} ({p['category']}): {twd(_value(p['revenue']))}, {p['quantity']} units",
        )
        for p in month["topProducts"]
    ]
    svg = charts.bar_chart(
        "top-products", "Top products by revenue, last 30 days", bars, empty="尚無銷售 · No sales"
    )
    return f'<section class="card"><h2>熱銷商品 · Top products (30 days)</h2>{svg}</section>'


def _funnel(funnel: dict[str, Any]) -> str:
    rates = funnel["rates"]
    steps = [
        ("購物車 Carts", funnel["carts"]),
        ("結帳 Checkouts", funnel["checkouts"]),
        ("付款 Paid", funnel["paid"]),
        ("送達 Delivered", funnel["delivered"]),
    ]
    between = [
        f"{_share(rates['cartToCheckout'])} 結帳 checked out",
        f"{_share(rates['checkoutToPaid'])} 付款 paid",
        f"{_share(rates['paidToDelivered'])} 送達 delivered",
    ]
    svg = charts.funnel_chart("funnel", "Conversion funnel, last 30 days", steps, between)
    return (
        '<section class="card"><h2>轉換漏斗 · Conversion funnel (30 days)</h2>'
        f"{svg}"
        f'<p class="muted">逾期未付 expired {escape(_share(rates["expiredShare"]))} · '
        f"取消 cancelled {escape(_share(rates['cancelledShare']))} of checkouts</p></section>"
    )


def _shipping(ship: dict[str, Any]) -> str:
    first, deliver = ship["hoursToFirstShipment"], ship["hoursShipmentToDelivery"]
    rows = [
        ("首次出貨 p50 · To first shipment, median", _hours(first["p50"])),
        ("首次出貨 p90 · To first shipment, p90", _hours(first["p90"])),
        ("出貨到送達 p50 · Shipment → delivery, median", _hours(deliver["p50"])),
        ("出貨到送達 p90 · Shipment → delivery, p90", _hours(deliver["p90"])),
    ]
    figures = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    within = charts.meter(
        "shipped-7d", "Share shipped within 7 days", ship["shippedWithin7DaysShare"]
    )
    auto = charts.meter("auto-delivered", "Auto-delivered share", ship["autoDeliveredShare"])
    return (
        '<section class="card shipping"><h2>出貨表現 · Shipping (orders paid in 30 days)</h2>'
        f'<dl class="figures">{figures}</dl>'
        f'<p style="margin-top:.9rem">7 日內出貨 · Shipped within 7 days '
        f'<span class="muted">({ship["shippedWithin7Days"]:,} / {ship["ordersPaid"]:,})</span></p>'
        f'<div class="meter">{within}</div>'
        f'<p>自動確認收貨 · Auto-delivered <span class="muted">({ship["autoDelivered"]:,} / '
        f'{ship["ordersDelivered"]:,} delivered)</span></p><div class="meter">{auto}</div>'
        "</section>"
    )


def _low_stock(stock: dict[str, Any]) -> str:
    low = stock["lowStock"]
    if not low:
        table = (
            '<p class="muted">沒有商品低於庫存警戒 · No product is at or below its threshold.</p>'
        )
    else:
        rows = "".join(
            f'<tr><td class="name" title="{escape(e["name"], quote=True)}">{escape(e["name"])}</td>'
            f'<td class="num">{e["available"]:,}</td><td class="num">{e["lowStockThreshold"]:,}</td>'
            f'<td class="num">{e["unitsSold30Days"]:,}</td></tr>'
            for e in low[:LOW_STOCK_ROWS]
        )
        more = (
            f'<p class="muted">…and {len(low) - LOW_STOCK_ROWS} more</p>'
            if len(low) > LOW_STOCK_ROWS
            else ""
        )
        table = (
            '<table class="low-stock"><thead><tr><th>商品 Product</th><th class="num">可售 '
            'Available</th><th class="num">警戒 Threshold</th><th class="num">30 日售出 Sold</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>{more}"
        )
    return f'<section class="card"><h2>低庫存 · Low stock ({len(low)})</h2>{table}</section>'


def _price_history(
    product: dict[str, Any] | None,
    history: dict[str, Any] | None,
    choices: Sequence[tuple[str, str]],
    scope_query: dict[str, str],
    problem: str | None,
) -> str:
    options = "".join(
        f'<option value="{escape(pid, quote=True)}"'
        f"{' selected' if product is not None and pid == product['productId'] else ''}>"
        f"{escape(charts.clip(name, 360))}</option>"
        for pid, name in choices
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{escape(v, quote=True)}">'
        for k, v in scope_query.items()
    )
    picker = (
        f'<form class="inline" method="get" action="{PATH}">{hidden}'
        f'<select name="productId" aria-label="Product">{options}</select>'
        '<button type="submit">顯示 · Show</button></form>'
        if choices
        else ""
    )
    note = f'<p class="notice">{escape(problem)}</p>' if problem else ""
    if product is None or history is None:
        svg = charts.step_chart(
            "price-history",
            "Price history",
            [],
            datetime.now(UTC),
            twd,
            str,
            empty="沒有可顯示的商品 · No product to show",
        )
        heading = "價格歷史 · Price history"
        caption = ""
    else:
        points = [
            (
                _taipei(p["at"]),
                _value(p["price"]),
                f"{_taipei(p['at']):%Y-%m-%d %H:%M}: {twd(_value(p['price']))}",
            )
            for p in history["points"]
        ]
        svg = charts.step_chart(
            "price-history",
            f"Price history of {product['name']}",
            points,
            datetime.now(TAIPEI),
            twd,
            lambda at: f"{at.astimezone(TAIPEI):%m-%d}",
            empty="沒有價格紀錄 · No price recorded",
        )
        heading = f"價格歷史 · Price history — {product['name']}"
        changes = max(0, len(points) - 1)
        caption = (
            f'<p class="muted">現價 now {escape(twd(_value(product["price"])))} · '
            f"{changes} 次調價 price changes · {escape(product['sellerName'] or '')}</p>"
        )
    return (
        '<section class="card price-history">'
        f'<div class="scope"><h2 style="margin:0">{escape(heading)}</h2>{picker}</div>'
        f"{note}{caption}{svg}</section>"
    )


# --- the page -------------------------------------------------------------------------------
def _canonical(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        return None


def _shop_name(container: Container, seller_id: str) -> str | None:
    user = accounts_q.get_user(container.engine, seller_id)
    if user is None:
        return None
    application = user.get("sellerApplication") or {}
    return str(application.get("shopName") or user.get("displayName") or user["username"])


def _seller_picker(container: Container, scope: str) -> str:
    sellers = accounts_q.list_users(container.engine, PageRequest(1, 100), role="seller")["users"]
    named = sorted(
        (
            (
                (u.get("sellerApplication") or {}).get("shopName") or u["displayName"] or "",
                u["userId"],
            )
            for u in sellers
        ),
    )
    options = [f'<option value=""{"" if scope else " selected"}>全平台 · All sellers</option>']
    options += [
        f'<option value="{escape(uid, quote=True)}"{" selected" if uid == scope else ""}>'
        f"{escape(charts.clip(name, 300))}</option>"
        for name, uid in named
    ]
    return (
        f'<form class="inline seller-picker" method="get" action="{PATH}">'
        f'<select name="sellerId" aria-label="Seller">{"".join(options)}</select>'
        '<button type="submit">切換 · Show</button></form>'
    )


def _product_for(
    container: Container,
    scope: str,
    wanted: str | None,
    month: dict[str, Any],
    stock: dict[str, Any],
) -> tuple[dict[str, Any] | None, str | None]:
    """The product whose price history is drawn: ``wanted`` if the caller may see it here,
    else the top product (or the first stocked one)."""
    problem = None
    if wanted is not None:
        pid = _canonical(wanted)
        view = catalog_q.get_product(container.engine, pid) if pid else None
        if view is not None and (not scope or view["sellerId"] == scope):
            return view, None
        problem = "找不到這個商品 · No such product here; showing the top product instead."
    fallback = [p["productId"] for p in month["topProducts"]] + [
        p["productId"] for p in stock["products"]
    ]
    if not fallback:
        return None, problem
    return catalog_q.get_product(container.engine, fallback[0]), problem


def render(
    container: Container,
    principal: Principal,
    scope: str,
    shop: str | None,
    product_id: str | None,
    csrf: str,
) -> HTMLResponse:
    engine, settings = container.engine, container.settings
    today = local_date(datetime.now(UTC))
    sales = {
        days: q.sales_analytics(engine, scope, today - timedelta(days=days - 1), today, "DAY")
        for days, _ in PERIODS
    }
    month = sales[30]
    start = date.fromisoformat(month["period"]["fromDate"])
    funnel = q.conversion(engine, scope, start, today)
    ship = q.shipping(engine, scope, start, today)
    stock = q.inventory_health(
        engine,
        scope,
        today,
        settings.low_stock_threshold,
        settings.dead_stock_days,
        PageRequest(1, LOW_STOCK_ROWS),
    )
    product, problem = _product_for(container, scope, product_id, month, stock)
    history = catalog_q.price_history(engine, product["productId"], None, None) if product else None
    choices = [(p["productId"], p["name"] or p["productId"]) for p in month["topProducts"]]
    if product is not None and product["productId"] not in {pid for pid, _ in choices}:
        choices.insert(0, (product["productId"], product["name"]))

    is_admin = principal.has_role("admin")
    if not scope:
        title = "全平台 · Platform"
        subtitle = "All sellers"
    else:
        title = shop or "Unknown seller"
        subtitle = "賣家 · Seller" + (f" {scope}" if is_admin else "")
    picker = _seller_picker(container, scope) if is_admin else ""
    scope_query = {"sellerId": scope} if scope and is_admin else {}
    main = (
        f'<div class="scope"><div><h1 class="scope-name">{escape(title)}</h1>'
        f'<p class="muted">{escape(subtitle)} · 台北時間 Asia/Taipei · {today.isoformat()}</p>'
        f"</div>{picker}</div>"
        + _kpis(sales)
        + _revenue_chart(month)
        + f'<div class="grid2">{_top_products(month)}{_funnel(funnel)}</div>'
        + f'<div class="grid2">{_shipping(ship)}{_low_stock(stock)}</div>'
        + _price_history(product, history, choices, scope_query, problem)
    )
    return _page(200, f"Dashboard · {title}", main, who=principal, csrf=csrf)


@router.get(
    PATH,
    response_class=HTMLResponse,
    dependencies=[Depends(READS)],
    responses={
        200: {"description": "The dashboard, or the sign-in form (a page)", "content": _HTML},
        400: {"description": "sellerId is not a seller's id (a page)", "content": _HTML},
        403: {"description": "Signed in, but not an admin or a seller (a page)", "content": _HTML},
    },
)
def dashboard(
    request: Request,
    container: ContainerDep,
    seller_id: Annotated[
        str | None, Query(alias="sellerId", max_length=64, description="admins: one seller")
    ] = None,
    product_id: Annotated[
        str | None,
        Query(alias="productId", max_length=64, description="whose price history to draw"),
    ] = None,
) -> Response:
    """The sales dashboard page for admins and sellers (sign-in form for anyone else).

    Admins see the platform, or one seller with ``sellerId``; a seller sees its own shop.
    Revenue and orders today, in 7 and 30 days against the period before, revenue by day,
    top products, the conversion funnel, shipping, low stock and a product's price history
    (``productId``, default the top product), as HTML with inline SVG charts."""
    principal, problem = _viewer(request, container)
    if principal is None:
        return _sign_in(200, problem, next_query=_kept_query(request.url.query))
    csrf = request.cookies.get(CSRF_COOKIE, "") if principal.via_cookie else ""
    if not (principal.has_role("admin") or principal.has_role("seller")):
        if principal.account.role in ("admin", "seller"):
            lines = [
                f"您的帳號已是 {principal.account.role}，請登出後重新登入。",
                f"Your account is now {principal.account.role}: sign out and sign in again.",
            ]
        else:
            lines = [
                "銷售儀表板僅供管理員與賣家使用。",
                "The sales dashboard is for admins and sellers only.",
            ]
        return _refusal(403, "Admins and sellers only", lines, principal, csrf)
    if principal.has_role("admin"):
        scope = ""
        if seller_id:
            canonical = _canonical(seller_id)
            if canonical is None:
                return _refusal(
                    400,
                    "Unknown seller",
                    ["sellerId 必須是賣家的 id · sellerId must be a seller's id."],
                    principal,
                    csrf,
                )
            scope = canonical
    else:
        scope = principal.account_id  # a seller sees its own shop, whatever it asks for
    shop = _shop_name(container, scope) if scope else None
    return render(container, principal, scope, shop, product_id, csrf)


@router.post(
    LOGIN_PATH,
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: _REDIRECT,
        400: {"description": "Email or password missing (the form again)", "content": _HTML},
        401: {"description": "Wrong email/username or password (the form again)", "content": _HTML},
        403: {"description": "Account disabled, or a post from another site", "content": _HTML},
        423: {"description": "Too many failed sign-ins: locked for a while", "content": _HTML},
        429: {
            "description": "Too many sign-in attempts; retry after Retry-After",
            "content": _HTML,
        },
        503: {"description": "Too many sign-ins at once; retry shortly", "content": _HTML},
    },
    openapi_extra=_FORM_BODY,
)
async def dashboard_login(request: Request, container: ContainerDep) -> Response:
    """The dashboard's sign-in form: signs in with cookies and goes back to the dashboard.

    Form-encoded ``email`` (or username) and ``password``; the same checks as
    ``POST /api/auth/login`` (it runs that login in cookie mode)."""
    form = await _form(request)
    email = form.get("email", "")[:320]
    next_query = _kept_query(form.get("next", "").lstrip("?"))
    if not _same_origin(request):
        return _sign_in(403, "請從本站登入 · Sign in from this site's own form.", email, next_query)
    try:
        body = auth_routes.LoginBody.model_validate(
            {"email": email, "password": form.get("password", ""), "useCookies": True}
        )
    except ValidationError:
        problem = "請輸入 Email 與密碼 · Enter your email (or username) and password."
        return _sign_in(400, problem, email, next_query)
    try:
        answer = await auth_routes.login(body, request, container, auth_routes.hash_pool(request))
    except ApiError as exc:
        page = _sign_in(exc.status, _login_problem(exc), email, next_query)
        for name, value in (exc.headers or {}).items():
            page.headers[name] = value
        return page
    redirect = RedirectResponse(PATH + next_query, status_code=303, headers=_headers())
    for key, raw in answer.raw_headers:
        if key.lower() == b"set-cookie":
            redirect.raw_headers.append((key, raw))
    return redirect


def _login_problem(exc: ApiError) -> str:
    return {
        "UNAUTHORIZED": "Email／帳號或密碼錯誤 · Wrong email/username or password.",
        "ACCOUNT_LOCKED": "登入失敗次數過多，帳號暫時鎖定 · Too many failed sign-ins; "
        "the account is locked for a while.",
        "ACCOUNT_DISABLED": "這個帳號已停用 · This account is disabled.",
        "RATE_LIMITED": "嘗試次數過多，請稍後再試 · Too many sign-in attempts; try again in "
        f"{exc.details.get('retryAfter', 60)} s.",
    }.get(exc.code, exc.message)


@router.post(
    LOGOUT_PATH,
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: _REDIRECT,
        403: {
            "description": "The form's CSRF token is missing or wrong (a page)",
            "content": _HTML,
        },
    },
    openapi_extra=_FORM_BODY,
)
async def dashboard_logout(request: Request, container: ContainerDep) -> Response:
    """The dashboard's sign-out button: ends the session and goes back to the sign-in form.

    Form-encoded ``csrf``: the value of the ``sl_csrf`` cookie (the page puts it there)."""
    form = await _form(request)
    if not _same_origin(request):
        return _page(403, "Not signed out", "<h1>Not signed out</h1>", narrow=True)
    try:
        principal = await run_in_threadpool(
            _form_principal, request, container, form.get("csrf", "")
        )
    except _CsrfRefused:
        body = (
            "<h1>Not signed out</h1><p>這個登出請求無效，請回到儀表板再試一次。</p>"
            f'<p>This sign-out request is not valid; <a href="{PATH}">open the dashboard</a> '
            "and use its button.</p>"
        )
        return _page(403, "Not signed out", body, narrow=True)
    if principal is not None:
        await run_in_threadpool(auth_routes.logout, principal, request, container)
    redirect = RedirectResponse(PATH, status_code=303, headers=_headers())
    clear_auth_cookies(redirect, container.settings.secure_cookies)
    return redirect
