"""The read side agrees with the Product aggregate about sale prices, for any history of
sales scheduled and cancelled: at every instant, product detail, search (its price bound and
price sort) and the price history show the price the aggregate would charge at checkout; a
rebuild of the catalog gives the same answers. Checkout itself never asks a read model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.accounts import Account
from aggregates.cart import Cart
from aggregates.catalog import Category, Product
from aggregates.errors import DomainError
from aggregates.inventory import Inventory
from commands.application import EventMeta, recording_as
from commands.orders import PlaceOrder
from projections.catalog import Catalog
from projections.rebuild import rebuild
from queries.catalog import ProductSearch, get_product, price_history, search_products
from queries.common import PageRequest
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings
from tests.support.catalog import ADDRESS

AT = datetime(2026, 3, 1, tzinfo=UTC)
LATER = AT + timedelta(days=1)  # every window is over by then: the whole history is shown
REGULAR = Decimal(1000)
Step = tuple[int, int, int, int, int | None]  # price, start, end, asked at, cancelled at
steps = st.lists(
    st.tuples(
        st.integers(1, 1200),
        st.integers(-20, 200),
        st.integers(-20, 200),
        st.integers(0, 150),
        st.none() | st.integers(0, 220),
    ),
    max_size=8,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    tmp = tmp_path_factory.mktemp("sales")
    c = bootstrap(make_settings(f"sqlite:///{tmp / 'sales.db'}", tmp))
    yield c
    c.close()


def minutes(n: int) -> datetime:
    return AT + timedelta(minutes=n)


def play(c: Container, history: list[Step]) -> tuple[Product, str]:
    """A seller's product at NT$1,000 and the sales ``history`` asks for (refused ones
    skipped); answers the product and its seller's id."""
    with recording_as(EventMeta("system:test", "sales")):
        seller = Account.register(
            uuid4(),
            email=f"{uuid4().hex[:8]}@example.test",
            username=f"s{uuid4().hex[:8]}",
            password_hash="x",
            display_name="店",
            phone=None,
            role="seller",
            email_verified=True,
        )
        category = Category.create(uuid4(), f"類{uuid4().hex[:6]}", None)
        product = Product.list_new(
            uuid4(),
            seller_id=str(seller.id),
            name="商品",
            description="",
            category_id=str(category.id),
            price=REGULAR,
            images=[],
            supplier_ids=[],
            banned=(),
            at=AT - timedelta(days=1),
        )
        c.app.save(seller, category, product)
        for price, start, end, asked, cancelled in sorted(history, key=lambda s: s[3]):
            sale_id = str(uuid4())
            try:
                product.schedule_sale(
                    sale_id, Decimal(price), minutes(start), minutes(end), minutes(asked)
                )
                if cancelled is not None and cancelled >= asked:
                    product.cancel_sale(sale_id, minutes(cancelled))
            except DomainError:
                pass
            if product.pending_events:
                c.app.save(product)
    return product, str(seller.id)


def paid_in_history(c: Container, pid: str, at: datetime) -> Decimal:
    points = price_history(c.engine, pid, None, None, LATER)["points"]
    shown = [p for p in points if datetime.fromisoformat(p["at"]) <= at]
    return Decimal(str(shown[-1]["price"]["value"]))


def check(c: Container, product: Product, seller_id: str, instants: list[int]) -> None:
    pid = str(product.id)
    for n in instants:
        at = minutes(n)
        charged = product.price_at(at)
        detail = get_product(c.engine, pid, at)
        assert detail is not None
        assert Decimal(str(detail["price"]["value"])) == charged
        on_sale = product.sale_at(at)
        assert (detail["salePrice"] is None) == (on_sale is None)
        assert paid_in_history(c, pid, at) == charged
        for bound, found in ((charged, [pid]), (charged - Decimal("0.01"), [])):
            criteria = ProductSearch(seller_id=seller_id, max_price=bound, sort="price")
            page = search_products(c.engine, criteria, PageRequest(), at)
            assert [p["productId"] for p in page["products"]] == found


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=steps, instants=st.lists(st.integers(-30, 230), min_size=1, max_size=6))
def test_reads_show_the_price_checkout_would_charge_at_any_instant(
    shop: Container, history: list[Step], instants: list[int]
) -> None:
    product, seller_id = play(shop, history)
    shop.catch_up()
    check(shop, product, seller_id, instants)


def test_a_rebuilt_catalog_gives_the_same_sale_prices(tmp_path: Path) -> None:
    c = bootstrap(make_settings(f"sqlite:///{tmp_path / 'rebuilt.db'}", tmp_path))
    try:
        history: list[Step] = [
            (600, 10, 20, 0, None),
            (500, 20, 40, 0, 30),  # handed over at 20, cancelled at 30
            (700, 50, 60, 0, 45),  # cancelled before it began
            (900, 60, 90, 55, None),
            (400, 80, 100, 0, None),  # overlaps: refused
        ]
        product, seller_id = play(c, history)
        c.catch_up()
        instants = [0, 10, 19, 20, 29, 30, 50, 59, 60, 89, 90]
        check(c, product, seller_id, instants)
        before = price_history(c.engine, str(product.id), None, None, LATER)
        rebuild(c.app, Catalog, c.locks, batch_size=3)
        check(c, product, seller_id, instants)
        assert price_history(c.engine, str(product.id), None, None, LATER) == before
    finally:
        c.close()


def test_checkout_charges_what_the_product_decides_before_any_read_model_knows(
    tmp_path: Path,
) -> None:
    """Nothing is projected here: checkout prices from the Product aggregate at its own
    clock, inside the window the sale price, after it the regular price."""
    c = bootstrap(make_settings(f"sqlite:///{tmp_path / 'checkout.db'}", tmp_path))
    try:
        product, _ = play(c, [(600, 10, 20, 0, None)])
        pid = str(product.id)
        with recording_as(EventMeta("system:test", "sales")):
            buyer = Account.register(
                uuid4(),
                email=f"{uuid4().hex[:8]}@example.test",
                username=f"b{uuid4().hex[:8]}",
                password_hash="x",
                display_name="買家",
                phone=None,
                email_verified=True,
            )
            stock = Inventory(product_id=pid, seller_id=product.seller_id)
            stock.receive(str(uuid4()), str(uuid4()), 5, None, AT)
            cart = Cart(buyer_id=str(buyer.id))
            cart.add(pid, 2)
            c.app.save(buyer, stock, cart)
        assert get_product(c.engine, pid) is None  # the catalog has not seen even the listing

        def order_at(minute: int) -> list[float]:
            """The unit prices charged by a checkout at ``minute``."""
            c.bus.clock = lambda: minutes(minute)
            command = PlaceOrder(
                order_id=uuid4(),
                buyer_id=str(buyer.id),
                shipping_address=ADDRESS,
                billing_address=ADDRESS,
                payment_method="COD",
                shipping_method="STANDARD",
                notes="",
                coupon_code=None,
                unpaid_ttl=timedelta(minutes=30),
            )
            order = c.bus.execute(command, EventMeta("system:test", "sales")).result
            return [item["unitPrice"]["value"] for item in order["items"]]

        assert order_at(15) == [600]
        with recording_as(EventMeta("system:test", "sales")):
            cart = c.app.repository.get(Cart.create_id(str(buyer.id)))
            cart.add(pid, 1)
            c.app.save(cart)
        assert order_at(20) == [1000]
    finally:
        c.close()


def a_shop(c: Container, offers: list[tuple[int, int | None]]) -> tuple[str, list[Product]]:
    """A seller with one product per (regular price, sale price or None) in force at AT."""
    with recording_as(EventMeta("system:test", "sales")):
        seller = Account.register(
            uuid4(),
            email=f"{uuid4().hex[:8]}@example.test",
            username=f"s{uuid4().hex[:8]}",
            password_hash="x",
            display_name="店",
            phone=None,
            role="seller",
            email_verified=True,
        )
        category = Category.create(uuid4(), f"類{uuid4().hex[:6]}", None)
        c.app.save(seller, category)
        products = []
        for regular, sale in offers:
            product = Product.list_new(
                uuid4(),
                seller_id=str(seller.id),
                name="商品",
                description="",
                category_id=str(category.id),
                price=Decimal(regular),
                images=[],
                supplier_ids=[],
                banned=(),
                at=AT - timedelta(days=1),
            )
            if sale is not None and sale < regular:
                product.schedule_sale(str(uuid4()), Decimal(sale), AT, AT + timedelta(hours=1), AT)
            c.app.save(product)
            products.append(product)
    return str(seller.id), products


offers = st.lists(
    st.tuples(st.integers(2, 60), st.none() | st.integers(1, 59)), min_size=1, max_size=7
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    offers=offers,
    low=st.none() | st.integers(1, 60),
    high=st.none() | st.integers(1, 60),
    descending=st.booleans(),
)
def test_price_sorted_pages_and_counts_go_by_the_price_paid_now(
    shop: Container,
    offers: list[tuple[int, int | None]],
    low: int | None,
    high: int | None,
    descending: bool,
) -> None:
    """Every page of a price sort, and its count, as if each product carried the price paid
    now (products on sale merge with the regular-price walk)."""
    seller_id, products = a_shop(shop, offers)
    shop.catch_up()
    if low is not None and high is not None and low > high:
        low, high = high, low
    paid = sorted(
        (
            (p.price_at(AT), str(p.id))
            for p in products
            if (low is None or p.price_at(AT) >= low) and (high is None or p.price_at(AT) <= high)
        ),
        reverse=descending,
    )
    criteria = ProductSearch(
        seller_id=seller_id,
        min_price=None if low is None else Decimal(low),
        max_price=None if high is None else Decimal(high),
        sort="-price" if descending else "price",
    )
    shown: list[str] = []
    for number in (1, 2, 3, 4):
        page = search_products(shop.engine, criteria, PageRequest(number, 2), AT)
        assert page["pagination"]["totalItems"] == len(paid)
        shown += [p["productId"] for p in page["products"]]
    assert shown == [pid for _, pid in paid]
