"""``shopledger seed-demo``: fill a database with a believable shop to explore at once.

Everything goes through the ordinary commands (so every row of every read model comes from
events, as in production): an admin, categories two levels deep, sellers with warehouses and
products whose prices changed over the last three months, verified buyers, and orders in every
status (created, paid, processing, partly and fully shipped, delivered, cancelled, refunded).
The clock of the command bus is moved back for the history, so price charts have a past; the
orders still awaiting online payment are placed within the last few minutes instead (well
inside ``SHOPLEDGER_UNPAID_ORDER_TTL``), so a server started on the demo does not expire them at
once.
Deterministic for one ``seed``. Demo accounts share one password, printed at the end.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError

from aggregates.accounts import normalize_email, normalize_username
from commands.accounts import (
    ApplyForSeller,
    ApproveSeller,
    EnsureAdmin,
    Register,
    lookup_account_id,
)
from commands.application import EventMeta
from commands.catalog import CreateCategory, CreateProduct, UpdateProduct
from commands.fulfilment import (
    ConfirmReceipt,
    CreateShipment,
    IssueInvoice,
    ProcessOrder,
    UpdateShipmentStatus,
)
from commands.inventory import CreateWarehouse, ReceiveStock
from commands.orders import AddToCart, CancelOrder, PlaceOrder, UpdateOrderStatus
from commands.payments import RefundOrder
from commands.reviews import ReplyToReview, WriteReview
from shopledger.bootstrap import Container

PASSWORD = "Demo-Shop-2026!"
_NS = UUID("0b1f5a2c-7d4e-4c8b-9a61-3e2f1d0c9b87")

CATALOG: dict[str, dict[str, list[tuple[str, str, int]]]] = {
    "食品飲料": {
        "茶葉": [
            ("阿里山高山烏龍茶 150g", "手採一心二葉，清香回甘。", 680),
            ("日月潭紅玉紅茶 75g", "台茶18號，肉桂薄荷香。", 520),
            ("文山包種茶 150g", "花香清雅，適合冷泡。", 450),
            ("東方美人茶 37.5g", "小綠葉蟬著涎，蜜香濃郁。", 1200),
        ],
        "零食": [
            ("鳳梨酥禮盒 12入", "土鳳梨內餡，酸甜適中。", 420),
            ("牛軋糖 300g", "花生香脆，奶香濃郁。", 260),
            ("芒果乾 200g", "愛文芒果，無添加糖。", 299),
        ],
    },
    "美妝保養": {
        "臉部保養": [
            ("玻尿酸保濕精華 30ml", "三重分子玻尿酸，深層保濕。", 890),
            ("溫和洗面乳 120g", "胺基酸配方，敏感肌適用。", 350),
        ],
        "身體清潔": [
            ("檜木精油沐浴乳 500ml", "台灣檜木香氣，舒緩放鬆。", 399),
            ("茶樹洗髮精 400ml", "控油去屑，清爽不乾澀。", 360),
        ],
    },
    "3C 周邊": {
        "手機配件": [
            ("USB-C 快充線 1m", "60W PD 快充，編織線身。", 249),
            ("磁吸行動電源 10000mAh", "無線充電，輕薄便攜。", 1290),
        ],
        "耳機": [
            ("藍牙降噪耳機", "主動降噪，續航 30 小時。", 2990),
            ("有線耳機 3.5mm", "入耳式，附麥克風。", 490),
        ],
    },
    "居家生活": {
        "廚房用品": [
            ("不鏽鋼保溫瓶 500ml", "316 不鏽鋼，保溫 12 小時。", 780),
            ("竹製砧板", "孟宗竹一體成型。", 560),
        ],
        "寢具": [
            ("天絲床包組 雙人", "涼感透氣，四件式。", 2380),
            ("記憶枕", "慢回彈，支撐頸部。", 1680),
        ],
    },
}
#: One shop per top category of CATALOG, in the same order.
SHOPS = [("阿里山茶坊", "茶葉"), ("好日子美妝", "美妝"), ("數位小舖", "3C"), ("家的樣子", "居家")]
BUYER_NAMES = [
    "王小明",
    "李美玲",
    "陳志豪",
    "林怡君",
    "張家豪",
    "黃淑芬",
    "吳建宏",
    "劉雅婷",
    "蔡宗翰",
    "楊佳穎",
]
CITIES = [
    ("台北市", "大安區", "106"),
    ("新北市", "板橋區", "220"),
    ("台中市", "西屯區", "407"),
    ("台南市", "東區", "701"),
    ("高雄市", "苓雅區", "802"),
    ("新竹市", "東區", "300"),
]
#: The statuses demo orders end in, in the proportions a shop would have.
ENDINGS = [
    "CREATED",
    "PAID",
    "PROCESSING",
    "PARTLY_SHIPPED",
    "SHIPPED",
    "DELIVERED",
    "DELIVERED",
    "DELIVERED",
    "CANCELLED",
    "REFUNDED",
]


class AlreadySeeded(Exception):
    """This database holds the demo of that seed already."""


@dataclass
class SeedReport:
    admin_email: str = ""
    sellers: list[str] = field(default_factory=list)
    buyers: list[str] = field(default_factory=list)
    products: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    reviews: int = 0


class _Clock:
    """The command bus's clock, moved back for the demo's history (never past the real now)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = min(at, datetime.now(UTC))

    def advance(self, delta: timedelta) -> None:
        self.set(self.now + delta)


def unpaid_age(ttl: timedelta, fraction: float) -> timedelta:
    """How long ago an unpaid demo order was placed: up to five minutes, and never more than a
    tenth of the unpaid-order TTL, so it stays payable for most of the TTL after seeding."""
    return min(timedelta(minutes=5), ttl / 10) * fraction


def steps(orders: int) -> int:
    """How many progress steps :func:`seed_demo` reports (for a progress bar's total)."""
    products = sum(len(p) for sub in CATALOG.values() for p in sub.values())
    return 1 + len(SHOPS) + len(BUYER_NAMES) + products + orders


def seed_demo(
    container: Container,
    *,
    orders: int = 40,
    seed: int = 2026,
    on_step: Callable[[str], None] = lambda _: None,
) -> SeedReport:
    rng = random.Random(seed)
    # Reviews draw from their own generator, so they leave the rest of the demo as it was.
    review_rng = random.Random(f"{seed}:reviews")
    tag = f"{seed}"
    if (
        lookup_account_id(container.app, "email", normalize_email(f"admin{tag}@demo.shopledger.tw"))
        is not None
    ):
        raise AlreadySeeded(
            f"this database already holds the demo shop of seed {seed}; pass another --seed"
        )
    bus = container.bus
    real_clock = bus.clock
    clock = _Clock(datetime.now(UTC) - timedelta(days=90))
    bus.clock = clock
    report = SeedReport()

    def run(command: Any, actor: str = "system:seed-demo") -> Any:
        return bus.execute(command, EventMeta(actor, "seed-demo")).result

    def account(email: str, username: str, name: str, role: str = "buyer") -> str:
        register = Register(
            account_id=uuid5(_NS, f"{tag}:{email}"),
            email=normalize_email(email),
            username=username,
            username_key=normalize_username(username),
            password_hash=password_hash,
            display_name=name,
            phone="0912345678",
            verification=None,
            role=role,
            email_verified=True,
        )
        if role == "admin":
            return str(run(EnsureAdmin(register))[1].id)
        return str(run(register).id)

    try:
        password_hash = container.passwords.hash(PASSWORD)
        report.admin_email = f"admin{tag}@demo.shopledger.tw"
        admin_id = account(report.admin_email, f"admin{tag}", "平台管理員", role="admin")
        on_step("admin")
        # categories, two levels
        leaves: dict[str, tuple[str, list[tuple[str, str, int]]]] = {}
        for top, subs in CATALOG.items():  # shared by every seed's shop
            top_id = uuid5(_NS, f"cat:{top}")
            if not _exists(container, top_id):
                run(CreateCategory(top_id, top, None), admin_id)
            for sub, items in subs.items():
                sub_id = uuid5(_NS, f"cat:{top}/{sub}")
                if not _exists(container, sub_id):
                    run(CreateCategory(sub_id, sub, str(top_id)), admin_id)
                leaves[f"{top}/{sub}"] = (str(sub_id), items)
        # sellers, each with a warehouse
        sellers: list[tuple[str, str]] = []
        for n, (shop, _) in enumerate(SHOPS, start=1):
            email = f"seller{n}.{tag}@demo.shopledger.tw"
            seller_id = account(email, f"seller{n}_{tag}", shop)
            run(ApplyForSeller(UUID(seller_id), shop, f"{shop}：用心挑選的好物。"), seller_id)
            run(ApproveSeller(UUID(seller_id)), admin_id)
            warehouse_id = uuid5(_NS, f"{tag}:wh:{n}")
            run(
                CreateWarehouse(
                    warehouse_id, f"DEMO{tag[-4:]}-{n}", f"{shop} 倉庫", "桃園市蘆竹區"
                ),
                admin_id,
            )
            sellers.append((seller_id, str(warehouse_id)))
            report.sellers.append(email)
            on_step(f"seller {shop}")
        buyers = []
        for n, name in enumerate(BUYER_NAMES, start=1):
            email = f"buyer{n}.{tag}@demo.shopledger.tw"
            buyers.append(account(email, f"buyer{n}_{tag}", name))
            report.buyers.append(email)
            on_step(f"buyer {name}")
        # products, stocked, with price changes over the past three months
        products: list[tuple[str, str, str]] = []  # product id, seller id, warehouse id
        tops = list(CATALOG)
        for path, (category_id, items) in sorted(leaves.items()):
            # each shop sells its own trade: the tea house the teas, and so on
            seller_id, warehouse = sellers[tops.index(path.split("/")[0]) % len(sellers)]
            for name, description, price in items:
                clock.set(datetime.now(UTC) - timedelta(days=90 - rng.randint(0, 10)))
                pid = uuid5(_NS, f"{tag}:product:{path}/{name}")
                run(
                    CreateProduct(pid, seller_id, name, description, category_id, Decimal(price)),
                    seller_id,
                )
                run(
                    ReceiveStock(
                        uuid4().hex, pid, seller_id, False, warehouse, rng.randint(40, 120)
                    ),
                    seller_id,
                )
                current = Decimal(price)
                for _ in range(rng.randint(1, 4)):
                    clock.advance(timedelta(days=rng.randint(5, 18)))
                    current = (
                        current * Decimal(rng.choice(["0.9", "0.95", "1.05", "1.1"]))
                    ).quantize(Decimal(1))
                    run(UpdateProduct(pid, seller_id, price=current), seller_id)
                products.append((str(pid), seller_id, warehouse))
                report.products += 1
                on_step(f"product {name}")
        # orders in every status, spread over the last weeks; the unpaid ones are recent
        settings = container.settings
        first_delivered: str | None = None
        for n in range(orders):
            ending = ENDINGS[n % len(ENDINGS)]
            if ending == "CREATED":
                clock.set(datetime.now(UTC) - unpaid_age(settings.unpaid_order_ttl, rng.random()))
            else:
                clock.set(
                    datetime.now(UTC)
                    - timedelta(days=rng.randint(1, 30), minutes=rng.randint(0, 600))
                )
            buyer = rng.choice(buyers)
            if ending == "DELIVERED" and first_delivered is None:
                buyer = first_delivered = buyers[0]  # the README's step 7 reviews this one
                keep_unreviewed = True
            else:
                keep_unreviewed = False
            lines = rng.sample(products, k=rng.randint(2 if ending == "PARTLY_SHIPPED" else 1, 3))
            quantities = [rng.randint(1, 3) for _ in lines]
            for (line_product, _, _), qty in zip(lines, quantities, strict=True):
                run(AddToCart(buyer, line_product, qty), buyer)
            city, district, postal = rng.choice(CITIES)
            name = BUYER_NAMES[buyers.index(buyer)]
            address = {
                "name": name,
                "phone": "0912345678",
                "street": f"中山路{rng.randint(1, 300)}號",
                "city": city,
                "district": district,
                "postalCode": postal,
                "country": "TW",
            }
            method = (
                "COD"
                if ending in ("PARTLY_SHIPPED",)
                else rng.choice(["CREDIT_CARD", "BANK_TRANSFER", "MOBILE_PAYMENT"])
            )
            oid = uuid5(_NS, f"{tag}:order:{n}")
            run(
                PlaceOrder(
                    oid,
                    buyer,
                    address,
                    address,
                    method,
                    rng.choice(["STANDARD", "EXPRESS", "PICKUP"]),
                    "",
                    None,
                    settings.unpaid_order_ttl,
                    settings.tax_rate,
                    settings.shipping_fee_table(),
                ),
                buyer,
            )
            _advance(
                run,
                clock,
                rng,
                oid,
                ending,
                admin_id,
                buyer,
                lines,
                quantities[0],
                method,
                settings.invoice_track,
            )
            if ending == "DELIVERED" and not keep_unreviewed:
                report.reviews += _review(run, clock, review_rng, oid, buyer, lines)
            report.orders[ending] = report.orders.get(ending, 0) + 1
            on_step(f"order {n + 1}")
    finally:
        bus.clock = real_clock
    return report


REVIEW_TEXTS = [
    "包裝完整，出貨很快，會再回購。",
    "品質不錯，跟描述一樣。",
    "味道很好，家人都喜歡。",
    "還可以，價格稍高。",
    "",
]


def _review(
    run: Callable[..., Any],
    clock: _Clock,
    rng: random.Random,
    oid: UUID,
    buyer: str,
    lines: list[tuple[str, str, str]],
) -> int:
    """The buyer reviews most products of a delivered order; sellers answer some reviews."""
    written = 0
    for product_id, seller_id, _ in lines:
        if rng.random() < 0.3:
            continue
        clock.advance(timedelta(hours=rng.randint(1, 48)))
        review = run(
            WriteReview(
                oid,
                buyer,
                product_id,
                rng.choice([6, 7, 8, 8, 9, 9, 10, 10, 10]),
                rng.choice([7, 8, 9, 10, 10]),
                rng.choice(REVIEW_TEXTS),
                (),
            ),
            buyer,
        )
        written += 1
        if rng.random() < 0.4:
            clock.advance(timedelta(hours=rng.randint(1, 24)))
            run(ReplyToReview(review.id, seller_id, "謝謝您的支持，歡迎再次光臨！"), seller_id)
    return written


def _exists(container: Container, aggregate_id: UUID) -> bool:
    try:
        container.app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return False
    return True


def _advance(
    run: Callable[..., Any],
    clock: _Clock,
    rng: random.Random,
    oid: UUID,
    ending: str,
    admin_id: str,
    buyer: str,
    lines: list[tuple[str, str, str]],
    first_quantity: int,
    method: str,
    track: str,
) -> None:
    """Walk one order along the status machine to ``ending``."""

    def later(hours: int) -> None:
        clock.advance(timedelta(hours=hours, minutes=rng.randint(0, 59)))

    if ending == "CREATED":
        return
    if ending == "CANCELLED":
        later(1)
        run(CancelOrder(oid, buyer, False, "不想買了"), buyer)
        return
    if method != "COD":
        later(0)
        run(UpdateOrderStatus(oid, "PAID", "demo payment"), admin_id)
    if ending == "PAID":
        return
    if ending == "REFUNDED":
        later(2)
        run(CancelOrder(oid, buyer, False, "重複下單"), buyer)
        return
    sellers = sorted({s for _, s, _ in lines})
    later(6)
    for seller in sellers:
        run(ProcessOrder(oid, seller, False, "倉管", None, None, ""), seller)
    if ending == "PROCESSING":
        return
    shipments = []
    carriers = ["BLACK_CAT", "HCT", "CHUNGHWA_POST", "SEVEN_ELEVEN"]
    parcels: list[tuple[str, tuple[tuple[str, int], ...] | None]]
    if ending == "PARTLY_SHIPPED":  # the first line's seller ships that line only
        parcels = [(lines[0][1], ((f"{oid}-1", first_quantity),))]
    else:
        parcels = [(seller, None) for seller in sellers]
    for seller, items in parcels:
        later(12)
        shipment = uuid4()
        run(
            CreateShipment(
                oid,
                seller,
                False,
                shipment,
                rng.choice(carriers),
                f"TW{rng.randint(10**9, 10**10 - 1)}",
                "出貨員",
                None,
                items,
                None,
                "",
            ),
            seller,
        )
        shipments.append((str(shipment), seller))
    if ending in ("PARTLY_SHIPPED", "SHIPPED"):
        return
    for parcel, seller in shipments:
        for status in ("IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"):
            later(10)
            run(UpdateShipmentStatus(parcel, seller, False, status, None, "", None, True), seller)
    later(20)
    run(ConfirmReceipt(oid, buyer), buyer)
    run(
        IssueInvoice(
            oid, admin_id, True, uuid4(), track, clock.now.date().isoformat(), None, None, ""
        ),
        admin_id,
    )
    if rng.random() < 0.3:
        later(30)
        run(
            RefundOrder(
                oid, admin_id, True, str(uuid4()), "商品瑕疵，部分退款", Decimal(50), False
            ),
            admin_id,
        )
