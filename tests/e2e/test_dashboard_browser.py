"""The sales dashboard (GET /dashboard): in a real headless Chromium against a served process
filled by `shopledger seed-demo`, and in-process (TestClient) for who may see what and escaping.

The browser test drives Debian's chromium (/usr/bin/chromium; .ci/run installs it) through the
``playwright`` package, without playwright's own browser download. Its full-page screenshots
are left in var/dashboard-admin.png and var/dashboard-seller.png.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from aggregates.taipei import local_date
from shopledger.seed import PASSWORD as DEMO_PASSWORD
from shopledger.seed import SHOPS
from tests.conftest import IN_CI, ClientFactory
from tests.support.accounts import User, admin, verified_user, wait
from tests.support.catalog import add_to_cart, category, checkout, seller, warehouse
from tests.support.processes import REPO, answers, cli_env, free_port, run, spawn, stop, wait_until

CHROMIUM = os.environ.get("SHOPLEDGER_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "var"


# --- in a real browser ----------------------------------------------------------------------
def _chromium() -> Any:
    """playwright's sync API, or skip (fail on CI) when it or the browser is missing."""
    problem = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem + " (CI=true: the browser test must run)", pytrace=False)
        pytest.skip(problem)
    return sync_playwright


def _seed(env: dict[str, str]) -> dict[str, Any]:
    seeded = run(["seed-demo"], env, timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    out = seeded.stdout
    # "... 40 orders (cancelled 4, created 4, delivered 12, ...)"
    listed = out.split(" orders (", 1)[1].split(")", 1)[0]
    counts = {k: int(v) for k, v in re.findall(r"([a-z_]+) (\d+)", listed)}
    return {
        "admin": re.search(r"admin:\s+(\S+)", out).group(1),  # type: ignore[union-attr]
        "sellers": re.search(r"sellers:\s+(.+)", out).group(1).split(", "),  # type: ignore[union-attr]
        "buyer": re.search(r"buyers:\s+(\S+?),", out).group(1),  # type: ignore[union-attr]
        "orders": counts,
    }


def _serve(env: dict[str, str], log: Path) -> tuple[Any, str]:
    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"

    assert wait_until(lambda: answers(f"{base}/healthz", 0.5), 30, 0.1), log.read_text()[-3000:]
    return proc, base


def _caught_up(base: str) -> bool:
    """Every projection of the fresh process has read the seeded events (/readyz says)."""
    try:
        lag = httpx.get(f"{base}/readyz", timeout=2).json()["checks"]["projections"]["lag"]
    except (httpx.HTTPError, KeyError, ValueError):
        return False
    return bool(lag) and all(n == 0 for n in lag.values())


def _paid_orders_show_up(base: str, admin_email: str, orders: dict[str, int]) -> None:
    """The seeded paid orders are in the read models the dashboard reads."""
    assert wait_until(lambda: _caught_up(base), 120, 0.25), httpx.get(f"{base}/readyz").text
    login = httpx.post(
        f"{base}/api/auth/login", json={"email": admin_email, "password": DEMO_PASSWORD}
    )
    assert login.status_code == 200, login.text
    headers = {
        "Authorization": f"Bearer {login.json()['accessToken']}",
        "X-Min-Position": login.headers["X-Event-Position"],
    }
    today = local_date(datetime.now(UTC))
    window = {"fromDate": (today - timedelta(days=100)).isoformat(), "toDate": today.isoformat()}
    funnel = httpx.get(f"{base}/api/analytics/conversion", params=window, headers=headers)
    assert funnel.status_code == 200, funnel.text
    # Every order that was paid (refunded ones too) at some point; COD ones never were.
    paid = sum(orders.get(k, 0) for k in ("paid", "processing", "shipped", "delivered", "refunded"))
    assert paid > 0
    assert funnel.json()["paid"] == paid
    assert funnel.json()["delivered"] == orders.get("delivered", 0)
    sales = httpx.get(f"{base}/api/analytics/sales", params=window, headers=headers).json()
    assert sales["revenue"]["value"] > 0 and sales["orders"] > 0


def _note(problems: list[str], kind: str, text: str) -> None:
    if kind == "error":
        problems.append(text)


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text))


def _sign_in(page: Any, email: str) -> Any:
    assert page.locator("form.signin").is_visible()
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form.signin button[type=submit]")
    return page


def _charts_have_data(page: Any) -> dict[int, tuple[float, int]]:
    """Each chart's <svg> is there with its data drawn; the figures it shows."""
    revenue = page.locator("svg[data-chart=revenue]")
    d = revenue.locator("path.line").get_attribute("d")
    assert d is not None and d.startswith("M") and d.count("L") == 29, d  # 30 days
    assert revenue.locator("circle.dot").count() == 30
    ys = {float(seg.split(",")[1]) for seg in re.findall(r"[ML][\d.]+,[\d.]+", d)}
    assert len(ys) > 1, "a flat line: no revenue drawn"
    top = page.locator("svg[data-chart=top-products] rect.bar")
    assert 1 <= top.count() <= 10
    funnel = page.locator("svg[data-chart=funnel]")
    assert funnel.locator("rect.funnel-step").count() == 4
    widths = [
        float(w)
        for w in funnel.locator("rect.funnel-step").evaluate_all(
            "rects => rects.map(r => r.getAttribute('width'))"
        )
    ]
    assert widths[0] >= widths[2] > 2  # carts ≥ paid, and some were paid
    rates = funnel.locator("text.rate").all_text_contents()
    assert len(rates) == 3 and all("%" in r for r in rates), rates
    history = page.locator("svg[data-chart=price-history]")
    step = history.locator("path.line.step").get_attribute("d")
    assert step is not None and "H" in step, step
    assert history.locator("circle.dot").count() >= 1
    assert page.locator("svg[data-chart=shipped-7d] rect.bar").count() == 1
    assert page.locator(".shipping dl.figures dd").count() == 4
    assert page.locator("table.low-stock, .card p.muted").count() >= 1
    kpis = {
        int(k.get_attribute("data-period")): k
        for k in page.locator("section.kpi").all()  # today, 7 and 30 days
    }
    assert sorted(kpis) == [1, 7, 30]
    figures = {
        days: (
            float(card.locator(".revenue").get_attribute("data-value")),
            int(card.locator(".orders").get_attribute("data-value")),
        )
        for days, card in kpis.items()
    }
    assert figures[1][0] <= figures[7][0] <= figures[30][0]
    return figures


@pytest.mark.slow
def test_admins_and_sellers_see_their_dashboard_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _chromium()
    env = cli_env(f"sqlite:///{tmp_path / 'var' / 'shop.db'}", tmp_path)
    demo = _seed(env)
    log = tmp_path / "serve.log"
    proc, base = _serve(env, log)
    problems: list[str] = []
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        _paid_orders_show_up(base, demo["admin"], demo["orders"])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", lambda m: _note(problems, m.type, m.text))
                page.on("pageerror", lambda e: _note(problems, "error", f"page error: {e}"))

                # Not signed in: the sign-in form, with a strict policy and no script.
                first = page.goto(f"{base}/dashboard")
                assert first is not None and first.status == 200
                policy = first.headers["content-security-policy"]
                assert "script-src 'none'" in policy and "default-src 'self'" in policy
                assert page.locator("script").count() == 0
                page.fill("#email", demo["admin"])
                page.fill("#password", "wrong password")
                with page.expect_navigation():
                    page.click("form.signin button[type=submit]")
                assert "Wrong email" in page.locator("[role=alert]").inner_text()
                problems.clear()  # Chromium may log the refused sign-in's 401 as a console error

                # The admin: the whole platform.
                _sign_in(page, demo["admin"])
                assert page.url == f"{base}/dashboard"
                assert "Platform" in page.locator("h1.scope-name").inner_text()
                cookies = {c["name"]: c for c in page.context.cookies()}
                assert cookies["sl_access"]["httpOnly"] and not cookies["sl_csrf"]["httpOnly"]
                platform = _charts_have_data(page)
                assert platform[30][0] > 0 and platform[30][1] > 0
                assert (
                    _number(page.locator("[data-period='30'] .revenue").inner_text())
                    == (platform[30][0])
                )
                page.screenshot(path=str(SCREENSHOTS / "dashboard-admin.png"), full_page=True)

                # Another product's price history, from the picker.
                options = page.locator("section.price-history select option")
                assert options.count() >= 2
                other = options.nth(1)
                name, pid = other.inner_text(), other.get_attribute("value")
                page.select_option("section.price-history select", pid)
                with page.expect_navigation():
                    page.click("section.price-history button")
                assert f"productId={pid}" in page.url
                heading = page.locator("section.price-history h2").inner_text()
                assert name.rstrip("…") in heading

                # One seller, as the admin sees it.
                page.select_option("form.seller-picker select", label=SHOPS[0][0])
                with page.expect_navigation():
                    page.click("form.seller-picker button")
                assert page.locator("h1.scope-name").inner_text() == SHOPS[0][0]

                # Sign out: the session ends, the form is back.
                with page.expect_navigation():
                    page.click("form.logout button")
                assert page.locator("form.signin").is_visible()
                assert "sl_access" not in {c["name"] for c in page.context.cookies()}

                # A seller: its own shop only, whatever it asks for.
                shop = SHOPS[0][0]
                _sign_in(page, demo["sellers"][0])
                assert page.locator("h1.scope-name").inner_text() == shop
                assert page.locator("form.seller-picker").count() == 0
                own = _charts_have_data(page)
                for days in (1, 7, 30):
                    assert own[days][0] <= platform[days][0]
                    assert own[days][1] <= platform[days][1]
                assert own[30][0] > 0
                page.screenshot(path=str(SCREENSHOTS / "dashboard-seller.png"), full_page=True)
                page.goto(f"{base}/dashboard?sellerId=00000000-0000-0000-0000-000000000000")
                assert page.locator("h1.scope-name").inner_text() == shop
                assert not problems, problems

                # A buyer signs in and is told the page is not for buyers.
                with page.expect_navigation():
                    page.click("form.logout button")
                _sign_in(page, demo["buyer"])
                assert "admins and sellers only" in page.locator("main").inner_text()
            finally:
                browser.close()
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text()


# --- in-process ------------------------------------------------------------------------------
def _cookie_login(client: TestClient, user: User) -> None:
    client.cookies.clear()
    r = client.post(
        "/dashboard/login",
        data={"email": user.email, "password": user.password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"
    assert {"sl_access", "sl_csrf"} <= set(client.cookies.keys())


def test_anonymous_callers_get_the_sign_in_form(make_client: ClientFactory) -> None:
    client = make_client(background=False)
    r = client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<form class="signin" method="post" action="/dashboard/login">' in r.text
    assert "script-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text
    # A stale or forged token is no way in either.
    client.cookies.set("sl_access", "not-a-token")
    again = client.get("/dashboard")
    assert again.status_code == 200 and "sign in again" in again.text


def test_sign_in_refusals_come_back_as_the_form(make_client: ClientFactory) -> None:
    client = make_client(background=False)
    user = verified_user(client)
    wrong = client.post("/dashboard/login", data={"email": user.email, "password": "nope"})
    assert wrong.status_code == 401 and "Wrong email" in wrong.text
    assert f'value="{user.email}"' in wrong.text  # the address is kept in the form
    empty = client.post("/dashboard/login", data={"email": ""})
    assert empty.status_code == 400 and 'class="signin"' in empty.text
    forged = client.post(
        "/dashboard/login",
        data={"email": user.email, "password": user.password},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "sl_access" not in client.cookies


def test_a_buyer_is_told_the_dashboard_is_for_admins_and_sellers(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    buyer = verified_user(client)
    _cookie_login(client, buyer)
    r = client.get("/dashboard")
    assert r.status_code == 403
    assert "admins and sellers only" in r.text
    assert 'action="/dashboard/logout"' in r.text  # and may sign out
    # Signing out needs the CSRF token the page carries; then the session is over.
    token = client.cookies["sl_csrf"]
    assert client.post("/dashboard/logout", data={"csrf": "x"}).status_code == 403
    access = client.cookies["sl_access"]
    out = client.post("/dashboard/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/dashboard"
    client.cookies.set("sl_access", access)  # the old token no longer opens anything
    assert "sign in again" in client.get("/dashboard").text


def test_names_are_escaped_and_a_seller_sees_only_its_own_shop(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    boss = admin(client)
    evil = "<script>alert(1)</script>"
    owner = seller(client, boss, shop='<script>alert("shop")</script>')
    other = seller(client, boss, shop="正常商店")
    cat = category(client, boss)
    r = client.post(
        "/api/catalog/products",
        json={
            "name": evil,
            "description": "說明",
            "categoryId": cat,
            "price": {"value": 500, "currency": "TWD"},
        },
        headers=owner.auth,
    )
    assert r.status_code == 201, r.text
    pid = r.json()["productId"]
    r = client.post(
        "/api/inventory/receipts",
        json={"productId": pid, "warehouseId": warehouse(client, boss), "quantity": 4},
        headers=owner.auth,
    )
    assert r.status_code == 201, r.text
    r = client.put(
        f"/api/catalog/products/{pid}",
        json={"price": {"value": 450, "currency": "TWD"}},
        headers=owner.auth,
    )
    assert r.status_code == 200, r.text
    buyer = verified_user(client)
    add_to_cart(client, buyer, pid, 1)
    order = checkout(client, buyer)
    assert order.status_code == 201, order.text
    paid = client.put(
        f"/api/sales/orders/{order.json()['orderId']}/status",
        json={"status": "PAID"},
        headers=boss.auth,
    )
    assert paid.status_code == 200, paid.text
    wait(client)

    _cookie_login(client, owner)
    page = client.get("/dashboard").text
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # top product, low stock, price
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert "&lt;script&gt;alert(&quot;shop&quot;)&lt;/script&gt;" in page  # the shop's name
    assert 'data-chart="top-products"' in page and 'class="bar"' in page
    assert 'class="low-stock"' in page  # 3 left of 4, under the default threshold of 5
    # A seller cannot look at another shop.
    assert "正常商店" not in client.get("/dashboard", params={"sellerId": other.user_id}).text

    _cookie_login(client, boss)
    platform = client.get("/dashboard", params={"productId": pid}).text
    assert "<script" not in platform and "&lt;script&gt;alert(1)&lt;/script&gt;" in platform
    assert "全平台" in platform
    one = client.get("/dashboard", params={"sellerId": other.user_id})
    assert one.status_code == 200 and '<h1 class="scope-name">正常商店</h1>' in one.text
    bad = client.get("/dashboard", params={"sellerId": "not-an-id"})
    assert bad.status_code == 400 and "<h1>Unknown seller</h1>" in bad.text
