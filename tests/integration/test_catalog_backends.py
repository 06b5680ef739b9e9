"""Catalog and inventory on SQLite and MariaDB: concurrent stock moves, Chinese search under
MySQL collations, price history and stock after a projection rebuild."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select

from aggregates.accounts import REPORT_THRESHOLD
from aggregates.catalog import Product
from aggregates.inventory import Inventory
from commands.accounts import ReportSeller
from commands.application import EventMeta
from commands.inventory import AdjustStock, ReceiveStock, TransferStock
from projections.catalog import Catalog
from projections.catalog import live as catalog_live
from projections.inventory import InventoryView
from projections.inventory import live as inventory_live
from projections.rebuild import rebuild
from tests.support.accounts import admin, container_of, wait
from tests.support.catalog import category, product, receive, seller, warehouse


def _setup(make_client: Any, database_url: str) -> Any:
    client = make_client(database_url)
    boss = admin(client)
    owner = seller(client, boss)
    cat = category(client, boss, "保養")
    return client, boss, owner, cat


def test_concurrent_transfers_and_adjustments_never_make_stock_negative(
    database_url, make_client
) -> None:
    client, boss, owner, cat = _setup(make_client, database_url)
    pid = product(client, owner, cat)["productId"]
    houses = [warehouse(client, boss) for _ in range(3)]
    receive(client, owner, pid, houses[0], 12)
    container = container_of(client)
    meta = EventMeta(owner.user_id, "race")
    outcomes: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(12):
            a, b = rng.sample(houses, 2)
            if rng.random() < 0.75:
                command: Any = TransferStock(
                    str(uuid4()), UUID(pid), owner.user_id, False, a, b, rng.randint(1, 6)
                )
            else:
                command = AdjustStock(
                    str(uuid4()), UUID(pid), owner.user_id, False, a, -rng.randint(1, 4), "LOST"
                )
            try:
                container.bus.execute(command, meta)
                outcomes.append("ok")
            except Exception as exc:  # noqa: BLE001 - the refusals are the point
                outcomes.append(type(exc).__name__)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(worker, range(6)))
    assert set(outcomes) <= {"ok", "InsufficientStock"}, outcomes
    assert "InsufficientStock" in outcomes and "ok" in outcomes
    inventory: Inventory = container.app.repository.get(Inventory.create_id(pid))
    assert all(units >= 0 for units in inventory.on_hand.values())
    container.catch_up()
    stock = inventory_live["stock"]
    with container.engine.connect() as conn:
        rows = {
            r.warehouse_id: r.on_hand
            for r in conn.execute(select(stock).where(stock.c.product_id == pid))
        }
    assert rows == {w: n for w, n in inventory.on_hand.items()}
    assert all(n >= 0 for n in rows.values())
    # units are conserved: what is on hand is what came in minus what was written off
    moves = inventory_live["movements"]
    with container.engine.connect() as conn:
        net = sum(
            r.on_hand_change for r in conn.execute(select(moves).where(moves.c.product_id == pid))
        )
    assert net == sum(rows.values())


def test_concurrent_first_receipts_all_count(database_url, make_client) -> None:
    client, boss, owner, cat = _setup(make_client, database_url)
    pid = product(client, owner, cat)["productId"]
    house = warehouse(client, boss)
    container = container_of(client)

    def receive_one(_: int) -> None:
        container.bus.execute(
            ReceiveStock(str(uuid4()), UUID(pid), owner.user_id, False, house, 5),
            EventMeta(owner.user_id, "r"),
        )

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(receive_one, range(12)))
    assert container.app.repository.get(Inventory.create_id(pid)).on_hand == {house: 60}


def test_search_works_with_chinese_and_accented_text(database_url, make_client) -> None:
    client, _, owner, cat = _setup(make_client, database_url)
    product(client, owner, cat, "保濕乳液 200ml", description="清爽")
    product(client, owner, cat, "洗髮精", description="去屑")
    product(
        client, owner, cat, "Café Crème", description="Straße Edition"
    )  # collides under *_ci collations
    product(client, owner, cat, "Cafe Creme", description="Strasse Edition")
    wait(client)

    def names(q: str) -> list[str]:
        return sorted(
            p["name"]
            for p in client.get("/api/catalog/products", params={"q": q}).json()["products"]
        )

    assert names("保濕乳液") == ["保濕乳液 200ml"]
    assert names("洗髮精") == ["洗髮精"]
    assert names("café") == ["Café Crème"]
    assert names("cafe") == ["Cafe Creme"]
    assert names("straße") == ["Cafe Creme", "Café Crème"]  # case folding: ß -> ss


def test_catalog_and_inventory_rebuilds_equal_incremental_processing(
    database_url, make_client
) -> None:
    client, boss, owner, cat = _setup(make_client, database_url)
    sub = category(client, boss, "乳液", cat)
    a = product(client, owner, sub, "保濕乳液", 100)["productId"]
    b = product(client, owner, cat, "化妝水", 200)["productId"]
    for price in (120, 95, 130):
        assert (
            client.put(
                f"/api/catalog/products/{a}",
                json={"price": {"value": price, "currency": "TWD"}},
                headers=owner.auth,
            ).status_code
            == 200
        )
    client.put(
        f"/api/catalog/products/{b}",
        json={"name": "清爽化妝水", "categoryId": sub},
        headers=owner.auth,
    )
    client.post(f"/api/catalog/products/{b}/delist", headers=owner.auth)
    client.put("/api/catalog/banned-keywords", json={"keywords": ["水貨"]}, headers=boss.auth)
    house, other = warehouse(client, boss), warehouse(client, boss)
    receive(client, owner, a, house, 7)
    client.post(
        "/api/inventory/transfers",
        headers=owner.auth,
        json={"productId": a, "fromWarehouseId": house, "toWarehouseId": other, "quantity": 2},
    )
    container = container_of(client)
    container.catch_up()
    history_before = client.get(f"/api/catalog/products/{a}/price-history").json()
    assert [p["price"]["value"] for p in history_before["points"]] == [100, 120, 95, 130]

    def dump(tables: dict[str, Any]) -> dict[str, list[tuple[object, ...]]]:
        with container.engine.connect() as conn:
            return {name: sorted(map(tuple, conn.execute(select(t)))) for name, t in tables.items()}

    before = dump(catalog_live), dump(inventory_live)
    assert len(before[0]["intervals"]) == 6 and len(before[1]["stock"]) == 2
    rebuild(container.app, Catalog, container.locks)
    rebuild(container.app, InventoryView, container.locks)
    assert (dump(catalog_live), dump(inventory_live)) == before
    assert client.get(f"/api/catalog/products/{a}/price-history").json() == history_before


def test_edge_input_the_domain_accepts_never_stalls_a_projection(database_url, make_client) -> None:
    """Long non-ASCII image URLs, a maximal keyword list, supplier ids in other spellings,
    same-second timestamps: every read model keeps up, on both backends."""
    client, boss, owner, cat = _setup(make_client, database_url)
    supplier = client.post(
        "/api/inventory/suppliers", json={"name": "供應商"}, headers=boss.auth
    ).json()["supplierId"]
    images = [f"https://例子.tw/{i}/" + "圖" * 2000 for i in range(10)]
    a = product(
        client,
        owner,
        cat,
        "A",
        images=images,
        supplierIds=[supplier.upper(), f"urn:uuid:{supplier}"],
    )
    assert a["supplierIds"] == [supplier]
    created = [product(client, owner, cat, f"P{i}")["productId"] for i in range(6)]
    keywords = [f"{i:03d}" + "禁" * 46 for i in range(500)]
    assert (
        client.put(
            "/api/catalog/banned-keywords", json={"keywords": keywords}, headers=boss.auth
        ).status_code
        == 200
    )
    container = container_of(client)
    container.catch_up()
    assert all(p >= container.head_position() for p in container.positions().values()), (
        container.positions()
    )
    got = client.get(f"/api/catalog/products/{a['productId']}", headers=owner.auth).json()
    assert got["images"] == images and got["supplierIds"] == [supplier]
    assert (
        "supplierIds" not in client.get(f"/api/catalog/products/{a['productId']}").json()
    )  # not public
    assert len(client.get("/api/catalog/banned-keywords").json()["keywords"]) == 500
    newest = [
        p["productId"]
        for p in client.get("/api/catalog/products", params={"sort": "newest"}).json()["products"]
    ]
    assert newest[:6] == created[::-1]
    linked = client.get(f"/api/inventory/suppliers/{supplier.upper()}", headers=owner.auth).json()[
        "productIds"
    ]
    assert linked == [a["productId"]]


def test_odd_query_values_are_400_or_empty_never_500(database_url, make_client) -> None:
    client, _boss, owner, cat = _setup(make_client, database_url)
    pid = product(client, owner, cat, "A", 100)["productId"]
    wait(client)
    for path, params in [
        (f"/api/catalog/products/{pid}/price-history", {"toDate": "9999-12-31"}),
        (f"/api/catalog/products/{pid}/price-history", {"fromDate": "0001-01-01"}),
        (
            f"/api/catalog/categories/{cat}/price-trend",
            {"fromDate": "9999-11-01", "toDate": "9999-12-31", "groupBy": "MONTH"},
        ),
        (f"/api/catalog/categories/{cat}/price-trend", {"toDate": "0001-01-03"}),
        ("/api/catalog/price-trends/compare", {"productIds": pid, "toDate": "9999-12-31"}),
    ]:
        r = client.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
    for params, expected in [
        ({"minPrice": "1e20"}, 0),
        ({"maxPrice": "1e20"}, 1),
        ({"minPrice": "1e999999"}, 0),
        ({"minPrice": "100.001"}, 0),
        ({"maxPrice": "99.999"}, 0),
        ({"minPrice": "99.999"}, 1),
        ({"categoryId": cat.upper()}, 1),
        ({"sellerId": owner.user_id.upper()}, 1),
    ]:
        r = client.get("/api/catalog/products", params=params)
        assert r.status_code == 200 and r.json()["pagination"]["totalItems"] == expected, (
            params,
            r.text,
        )


def test_hidden_products_do_not_leak_through_prices_or_suppliers(database_url, make_client) -> None:
    client, boss, owner, cat = _setup(make_client, database_url)
    other = seller(client, boss)
    supplier = client.post(
        "/api/inventory/suppliers", json={"name": "S1"}, headers=boss.auth
    ).json()["supplierId"]
    hidden = product(client, owner, cat, "H", supplierIds=[supplier])["productId"]
    client.post(f"/api/catalog/products/{hidden}/delist", headers=owner.auth)
    wait(client)
    for path in (
        f"/api/catalog/products/{hidden}/price-history",
        f"/api/catalog/products/{hidden}",
    ):
        assert client.get(path).status_code == 404
        assert client.get(path, headers=other.auth).status_code == 404
        assert client.get(path, headers=owner.auth).status_code == 200
    assert (
        client.get(
            "/api/catalog/price-trends/compare", params={"productIds": hidden}, headers=other.auth
        ).status_code
        == 404
    )
    assert (
        client.get(f"/api/inventory/suppliers/{supplier}", headers=other.auth).json()["productIds"]
        == []
    )
    assert client.get(f"/api/inventory/suppliers/{supplier}", headers=boss.auth).json()[
        "productIds"
    ] == [hidden]
    assert (
        client.get(
            "/api/inventory/suppliers", params={"productId": hidden}, headers=other.auth
        ).status_code
        == 404
    )


def test_a_listing_racing_the_sellers_suspension_fails_instead_of_succeeding(
    mariadb_url, make_client
) -> None:
    """The product's command read the seller's listing rights; a suspension committed before
    it commits makes it decide again (and be refused). MariaDB only: on SQLite a command's
    transaction holds the write lock from its start, so nothing can commit in between."""
    client, _, owner, cat = _setup(make_client, mariadb_url)
    container = container_of(client)
    sid = UUID(owner.user_id)
    for n in range(REPORT_THRESHOLD):  # one report short of a suspension
        container.bus.execute(ReportSeller(sid, f"buyer-{n}", "仿冒品"), EventMeta("x", "r"))
    interleaved: list[bool] = []

    def suspend_meanwhile(uow: Any) -> None:
        # After the product command read the account, before it saves: the last report
        # suspends the seller and commits, from another thread (its own transaction).
        if not interleaved and any(isinstance(a, Product) for a in uow.pending):
            interleaved.append(True)
            with ThreadPoolExecutor(1) as pool:
                report = ReportSeller(sid, "buyer-last", "仿冒品")
                assert pool.submit(container.bus.execute, report, EventMeta("x", "r")).result()

    container.bus.policies.append(suspend_meanwhile)
    try:
        r = client.post(
            "/api/catalog/products",
            json={
                "name": "搶在停權前上架",
                "description": "d",
                "categoryId": cat,
                "price": {"value": 100, "currency": "TWD"},
            },
            headers=owner.auth,
        )
    finally:
        container.bus.policies.remove(suspend_meanwhile)
    assert interleaved
    assert r.status_code == 403, r.text
    assert r.json()["error"]["details"]["reason"] == "LISTING_RIGHTS_SUSPENDED"
    wait(client)
    mine = client.get("/api/catalog/products", params={"sellerId": owner.user_id}).json()
    assert mine["products"] == []
