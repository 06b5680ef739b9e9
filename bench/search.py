"""Product search latency at 100,000 products (SQLite and MariaDB).

    python -m bench.search [--products 100000] [--backends sqlite,mariadb] [--repeat 200]
                           [--http-repeat 100] [--explain] [--analyze]

Per backend, on a fresh database:
1. Seeds through real events: ~220 categories in a 3-level tree, 500 seller accounts and
   ``--products`` products (mostly Traditional Chinese names: brand + type + spec, some
   English), 10% of them with 1-3 price changes; saved 500 aggregates per transaction.
2. Brings the ``catalog`` projection up to date (that projection only) and prints how long
   seeding and catch-up took and the sizes of ``rm_products`` and ``rm_product_terms``.
3. Times ``queries.catalog.search_products`` (what the API calls), warm, for eight query
   shapes (``--repeat`` calls each, parameters drawn from a pool), then a subset end to end
   through HTTP (FastAPI TestClient, ``GET /api/catalog/products``).

Target: p95 < 50 ms for every shape on both backends. ``--explain`` adds, per shape, the time
spent in each SQL statement and the plan (EXPLAIN QUERY PLAN / EXPLAIN) of the slow ones.
``--analyze`` runs ANALYZE (SQLite) / ANALYZE TABLE (MariaDB) on the read model before timing;
by default nothing does, as nothing in the product does either.

No orders are placed, so ``units_sold`` is 0 for every product (``bestselling`` then orders
by newest within that single tie).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine

from aggregates.accounts import Account
from aggregates.catalog import Category, Product
from bench.common import container_for, database
from commands.application import EventMeta, recording_as
from projections.catalog import live as catalog_tables
from queries.catalog import ProductSearch, search_products
from queries.common import PageRequest
from shopledger.bootstrap import Container

TARGET_MS = 50.0
BATCH = 500
SELLERS = 500
SEED = 20261124

# --- vocabulary -----------------------------------------------------------------------------
# root -> (subcategory -> leaf product types), brands (zh, en), adjectives, specs, English types,
# and domain phrases for descriptions. Leaves are named after the product type they hold.


@dataclass(frozen=True)
class Domain:
    name: str
    tree: dict[str, list[str]]
    brands: list[str]
    en_brands: list[str]
    adjectives: list[str]
    specs: list[str]
    en_types: list[str]
    phrases: list[str]
    price: tuple[float, float]  # log-uniform range, NT$


DOMAINS: list[Domain] = [
    Domain(
        "美妝保養",
        {
            "臉部保養": ["化妝水", "乳液", "精華液", "面霜", "面膜"],
            "彩妝": ["口紅", "粉底液", "眼影盤", "睫毛膏"],
            "身體清潔": ["沐浴乳", "洗手乳", "身體乳", "去角質霜"],
            "髮品": ["洗髮精", "護髮素", "髮油", "造型噴霧"],
            "香氛": ["香水", "擴香瓶", "香氛蠟燭", "精油"],
        },
        [
            "雪肌精",
            "資生堂",
            "蘭蔻",
            "理膚寶水",
            "肌研",
            "露得清",
            "契爾氏",
            "歐蕾",
            "植村秀",
            "碧兒泉",
        ],
        ["Clinique", "Neutrogena", "Olay", "Bioderma", "Cetaphil", "Kiehl's"],
        ["保濕", "美白", "抗老", "控油", "舒緩", "清爽", "滋潤", "無香", "敏感肌"],
        ["200ml", "150ml", "50ml", "30g", "100g", "10片", "補充包", "2入組", "400ml"],
        [
            "Moisturizing Lotion",
            "Facial Cleanser",
            "Hydrating Serum",
            "Sunscreen SPF50",
            "Lip Balm",
            "Hair Mask",
        ],
        [
            "溫和不刺激",
            "清爽不黏膩",
            "肌膚水潤一整天",
            "專櫃熱銷款",
            "敏感肌也適用",
            "無添加酒精",
            "皮膚科醫師推薦",
        ],
        (120, 3500),
    ),
    Domain(
        "食品飲料",
        {
            "茶飲": ["綠茶", "烏龍茶", "紅茶", "花草茶", "奶茶"],
            "咖啡": ["咖啡豆", "濾掛咖啡", "即溶咖啡", "冷萃咖啡"],
            "零食": ["洋芋片", "牛肉乾", "鳳梨酥", "堅果", "餅乾"],
            "生鮮": ["雞胸肉", "鮭魚", "有機蔬菜箱", "水果禮盒"],
            "調味": ["醬油", "橄欖油", "辣椒醬", "海鹽"],
        },
        [
            "天仁",
            "統一",
            "義美",
            "光泉",
            "桂格",
            "台糖",
            "金蘭",
            "萬家香",
            "奇美",
            "新東陽",
            "維力",
        ],
        ["Lipton", "Nescafe", "Starbucks", "Lay's", "Kirkland"],
        ["有機", "無糖", "低卡", "手工", "嚴選", "台灣", "日式", "經典", "高山"],
        ["茶包 50入", "茶包 100入", "500g", "1kg", "12入", "600ml x 24瓶", "禮盒", "300g", "2斤"],
        ["Green Tea", "Coffee Beans", "Mixed Nuts", "Olive Oil", "Dark Chocolate", "Granola"],
        [
            "產地直送",
            "新鮮現做",
            "無添加防腐劑",
            "團購美食",
            "辦公室下午茶首選",
            "冷藏配送",
            "送禮自用兩相宜",
        ],
        (10, 2500),
    ),
    Domain(
        "3C家電",
        {
            "手機配件": ["手機殼", "保護貼", "充電線", "行動電源"],
            "耳機音響": ["藍牙耳機", "耳罩式耳機", "藍牙喇叭", "麥克風"],
            "電腦周邊": ["滑鼠", "鍵盤", "螢幕", "隨身碟", "硬碟"],
            "廚房家電": ["電鍋", "氣炸鍋", "咖啡機", "果汁機", "電熱水瓶"],
            "生活家電": ["吹風機", "除濕機", "空氣清淨機", "電風扇", "吸塵器"],
        },
        ["大同", "象印", "膳魔師", "小米", "華碩", "宏碁", "歌林", "聲寶", "國際牌", "東元"],
        ["Sony", "Apple", "Dyson", "Philips", "Logitech", "Samsung", "ASUS", "Anker"],
        ["無線", "快充", "靜音", "智慧", "輕薄", "大容量", "變頻", "防水", "迷你"],
        ["128GB", "256GB", "10000mAh", "6人份", "10人份", "1.5m", "27吋", "USB-C", "黑色", "白色"],
        [
            "Wireless Earbuds",
            "Mechanical Keyboard",
            "Gaming Mouse",
            "Power Bank",
            "Hair Dryer",
            "USB-C Cable",
            "Smart Watch",
        ],
        [
            "原廠保固一年",
            "台灣公司貨",
            "支援快充",
            "節能一級",
            "低噪音設計",
            "續航力長達30小時",
            "附中文說明書",
        ],
        (150, 50000),
    ),
    Domain(
        "服飾鞋包",
        {
            "女裝": ["洋裝", "襯衫", "針織衫", "長裙", "牛仔褲"],
            "男裝": ["T恤", "休閒褲", "外套", "西裝褲"],
            "鞋類": ["慢跑鞋", "帆布鞋", "拖鞋", "皮鞋", "靴子"],
            "包包": ["後背包", "托特包", "側背包", "皮夾"],
            "配件": ["帽子", "圍巾", "襪子", "皮帶"],
        },
        ["佐丹奴", "東京著衣", "黛安芬", "阿瘦", "鬼塚虎", "哥倫比亞"],
        ["Nike", "Adidas", "Uniqlo", "New Balance", "Puma", "Converse"],
        ["純棉", "修身", "寬鬆", "防潑水", "透氣", "復古", "韓版", "輕量", "休閒"],
        ["S", "M", "L", "XL", "US 9", "US 10", "24號", "黑色", "米白", "深藍"],
        [
            "Running Shoes",
            "Cotton T-Shirt",
            "Denim Jacket",
            "Backpack",
            "Baseball Cap",
            "Wool Scarf",
        ],
        [
            "版型修身顯瘦",
            "百搭好穿",
            "四季皆宜",
            "可機洗",
            "尺寸請參考尺寸表",
            "韓國連線新品",
            "透氣排汗",
        ],
        (99, 6000),
    ),
    Domain(
        "居家生活",
        {
            "寢具": ["枕頭", "床包", "棉被", "涼被"],
            "收納": ["收納箱", "衣架", "置物架", "真空壓縮袋"],
            "廚具": ["平底鍋", "保溫瓶", "刀具組", "砧板", "便當盒"],
            "清潔用品": ["洗衣精", "洗碗精", "衛生紙", "濕紙巾"],
            "家具": ["辦公椅", "書桌", "沙發", "床架"],
        },
        ["無印良品", "宜得利", "樂扣樂扣", "膳魔師", "花王", "白蘭", "舒潔", "五月花", "康寧"],
        ["3M", "IKEA", "Tefal", "Zojirushi", "Tiger"],
        ["抗菌", "記憶", "防蹣", "可折疊", "耐熱", "大容量", "北歐風", "超吸水", "環保"],
        ["單人", "雙人", "加大", "2000ml", "28cm", "3入", "12捲", "箱購", "500ml"],
        [
            "Memory Foam Pillow",
            "Storage Box",
            "Frying Pan",
            "Vacuum Flask",
            "Office Chair",
            "Laundry Detergent",
        ],
        [
            "居家必備",
            "大容量好收納",
            "簡約設計",
            "通過SGS檢驗",
            "可機洗好清潔",
            "組裝簡單",
            "耐用不易變形",
        ],
        (30, 20000),
    ),
    Domain(
        "運動戶外",
        {
            "健身器材": ["啞鈴", "瑜珈墊", "彈力帶", "跳繩"],
            "露營": ["帳篷", "睡袋", "露營椅", "炊具組"],
            "自行車": ["自行車", "安全帽", "車燈", "車鎖"],
            "球類": ["籃球", "羽球拍", "桌球拍", "足球"],
            "戶外服飾": ["機能衣", "防風外套", "登山鞋", "運動襪"],
        },
        ["迪卡儂", "捷安特", "美利達", "勝利", "美津濃"],
        ["Coleman", "Spalding", "Yonex", "Mizuno", "The North Face"],
        ["專業", "輕量", "防水", "耐磨", "加厚", "折疊", "入門", "競賽級"],
        ["5kg", "10kg", "4人", "6mm", "26吋", "7號", "L號", "2入"],
        [
            "Yoga Mat",
            "Camping Tent",
            "Dumbbell Set",
            "Badminton Racket",
            "Sleeping Bag",
            "Bike Helmet",
        ],
        ["戶外活動好夥伴", "防潑水材質", "輕巧好攜帶", "適合初學者", "專業選手指定", "附收納袋"],
        (50, 30000),
    ),
    Domain(
        "母嬰用品",
        {
            "尿布": ["黏貼型尿布", "褲型尿布", "拭巾"],
            "餵養": ["奶瓶", "奶嘴", "副食品", "奶粉", "學習杯"],
            "嬰兒服": ["包屁衣", "連身衣", "嬰兒帽", "口水巾"],
            "玩具": ["積木", "布偶", "繪本", "安撫玩具"],
            "外出": ["嬰兒推車", "背巾", "汽座", "媽媽包"],
        },
        ["幫寶適", "好奇", "滿意寶寶", "貝親", "小獅王", "奇哥", "麗嬰房", "樂高"],
        ["Pampers", "Huggies", "Combi", "Chicco", "LEGO"],
        ["超薄", "透氣", "防脹氣", "有機棉", "輕便", "安全", "可水洗"],
        ["S號", "M號", "L號", "240ml", "160ml", "80抽 x 3包", "0-6個月", "一箱"],
        ["Baby Bottle", "Diaper Pants", "Baby Wipes", "Stroller", "Building Blocks", "Teether"],
        [
            "新生兒適用",
            "無毒檢驗合格",
            "媽媽口碑推薦",
            "柔軟親膚",
            "寶寶安心使用",
            "通過歐盟安全認證",
        ],
        (30, 25000),
    ),
    Domain(
        "圖書文具",
        {
            "書籍": ["小說", "漫畫", "食譜", "旅遊書", "語言學習"],
            "文具": ["原子筆", "鋼筆", "筆記本", "便利貼", "修正帶"],
            "美術用品": ["水彩", "色鉛筆", "畫板", "麥克筆"],
            "辦公用品": ["計算機", "釘書機", "資料夾", "標籤機"],
            "桌遊": ["桌遊", "拼圖", "撲克牌", "魔術方塊"],
        },
        ["三菱", "百樂", "斑馬", "國譽", "輝柏", "雄獅", "卡西歐"],
        ["Pilot", "Zebra", "Faber-Castell", "Moleskine", "Casio"],
        ["限量", "經典", "日系", "繁體中文版", "精裝", "環保", "速乾", "大人的"],
        ["0.5mm", "0.38mm", "12色", "24色", "A5", "B5", "10入", "1000片"],
        [
            "Gel Pen",
            "Notebook A5",
            "Fountain Pen",
            "Colored Pencils",
            "Jigsaw Puzzle",
            "Board Game",
        ],
        ["書寫流暢", "學生上班族必備", "日本原裝進口", "繁體中文說明", "全彩印刷", "適合全家同樂"],
        (10, 3000),
    ),
]

COMMON_PHRASES = [
    "台灣現貨，24小時內出貨",
    "原廠公司貨",
    "品質保證，享七天鑑賞期",
    "買二送一限時優惠",
    "適合送禮",
    "日常使用好選擇",
    "多款顏色可選",
    "全館滿千免運",
    "官方授權經銷",
    "新品上市",
    "熱銷回購破萬",
    "實體店面同步販售",
    "下單前請先詢問庫存",
    "超商取貨付款",
    "商品皆有開立發票",
]
EN_PHRASES = [
    "Authentic product, ships within 24 hours.",
    "Imported from Japan.",
    "Free shipping over NT$1,000.",
    "Limited edition.",
    "Best seller.",
    "Great gift idea.",
]


@dataclass
class Leaf:
    category_id: str
    domain: Domain
    sub_id: str
    root_id: str
    kind: str  # the product type this leaf holds


@dataclass
class Catalogue:
    """What the seed made, for building query pools."""

    leaves: list[Leaf] = field(default_factory=list)
    subs: list[tuple[str, Domain]] = field(default_factory=list)
    roots: list[tuple[str, Domain]] = field(default_factory=list)
    sample_names: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # brand, adj, kind, spec
    products: int = 0
    events: int = 0  # all events stored (the head position once seeded)


def rand_uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


class Counter:
    """A one-line progress counter (rewritten in place on a terminal, every 10% otherwise)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.started = label, max(total, 1), time.monotonic()
        self.tty = sys.stdout.isatty()
        self.next_line = 0.1

    def update(self, done: int) -> None:
        fraction = done / self.total
        message = (
            f"  {self.label}: {done:,}/{self.total:,} ({time.monotonic() - self.started:.0f} s)"
        )
        if self.tty:
            print("\r" + message, end="", flush=True)
        elif fraction >= self.next_line:
            print(message, flush=True)
            while self.next_line <= fraction:
                self.next_line += 0.1

    def done(self) -> None:
        if self.tty:
            print(flush=True)


# --- seeding --------------------------------------------------------------------------------
def description(
    rng: random.Random, domain: Domain, kind: str, adjective: str, english: bool
) -> str:
    target = rng.randint(30, 120)
    parts: list[str] = []
    pool = [*domain.phrases, *COMMON_PHRASES, f"{adjective}{kind}首選", f"人氣{kind}"]
    while sum(len(p) + 1 for p in parts) < target:
        if english and rng.random() < 0.5:
            parts.append(rng.choice(EN_PHRASES))
        else:
            parts.append(rng.choice(pool))
    return ("，".join(parts))[:target].rstrip("，") + "。"


def price(rng: random.Random, domain: Domain) -> Decimal:
    low, high = domain.price
    value = low * (high / low) ** rng.random()
    value = min(max(value, 10), 50_000)
    if value > 200:
        return Decimal(int(value) // 10 * 10 + rng.choice((0, 9)))  # 1290, 1299
    return Decimal(int(value))


def seed(c: Container, products: int, rng: random.Random) -> Catalogue:
    made = Catalogue()
    with recording_as(EventMeta("system:bench", "bench")):
        categories: list[Category] = []
        for domain in DOMAINS:
            root = Category.create(rand_uuid(rng), domain.name, None)
            categories.append(root)
            made.roots.append((str(root.id), domain))
            for sub_name, kinds in domain.tree.items():
                sub = Category.create(rand_uuid(rng), sub_name, root)
                categories.append(sub)
                made.subs.append((str(sub.id), domain))
                for kind in kinds:
                    leaf = Category.create(rand_uuid(rng), kind, sub)
                    categories.append(leaf)
                    made.leaves.append(Leaf(str(leaf.id), domain, str(sub.id), str(root.id), kind))
        c.app.save(*categories)

        seller_ids: list[str] = []
        for start in range(0, SELLERS, BATCH):
            accounts = []
            for i in range(start, min(start + BATCH, SELLERS)):
                account = Account.register(
                    rand_uuid(rng),
                    email=f"seller{i}@bench.example",
                    username=f"seller{i}",
                    password_hash="x",
                    display_name=f"{rng.choice(['小', '阿', '大'])}{i}號好物店",
                    phone=None,
                    role="seller",
                    email_verified=True,
                )
                accounts.append(account)
                seller_ids.append(str(account.id))
            c.app.save(*accounts)

        # Some categories and sellers are much bigger than others.
        leaf_weights = [1 / (rank + 1) ** 0.6 for rank in range(len(made.leaves))]
        rng.shuffle(leaf_weights)
        seller_weights = [1 / (rank + 1) ** 0.7 for rank in range(SELLERS)]
        now = datetime.now(UTC)
        first = now - timedelta(days=730)
        step = timedelta(days=720) / max(products, 1)
        counter = Counter("products", products)
        done = 0
        while done < products:
            batch: list[Product] = []
            for n in range(done, min(done + BATCH, products)):
                drawn = rng.choices(made.leaves, leaf_weights)[0]
                domain = drawn.domain
                adjective = rng.choice(domain.adjectives)
                spec = rng.choice(domain.specs)
                english = rng.random() < 0.15
                if english:
                    brand = rng.choice(domain.en_brands)
                    name = f"{brand} {rng.choice(domain.en_types)} {spec}"
                else:
                    brand = rng.choice(domain.brands + domain.en_brands[:2])
                    name = f"{brand} {adjective if rng.random() < 0.6 else ''}{drawn.kind} {spec}"
                    if n % 100 == 0:
                        made.sample_names.append((brand, adjective, drawn.kind, spec))
                at = first + step * n + timedelta(seconds=rng.randint(0, 3600))
                product = Product.list_new(
                    rand_uuid(rng),
                    seller_id=rng.choices(seller_ids, seller_weights)[0],
                    name=name,
                    description=description(rng, domain, drawn.kind, adjective, english),
                    category_id=drawn.category_id,
                    price=price(rng, domain),
                    images=[
                        f"https://img.bench.example/p/{n}/{k}.jpg" for k in range(rng.randint(1, 4))
                    ],
                    supplier_ids=[],
                    banned=(),
                    at=at,
                )
                if rng.random() < 0.10:
                    for k in range(rng.randint(1, 3)):
                        factor = Decimal(rng.choice(("0.8", "0.9", "0.95", "1.05", "1.1")))
                        new_price = max(Decimal(10), (product.price * factor).quantize(Decimal(1)))
                        product.change_price(new_price, at + timedelta(days=7 * (k + 1)))
                batch.append(product)
            c.app.save(*batch)
            done += len(batch)
            made.products = done
            counter.update(done)
        counter.done()
    made.events = c.head_position()
    return made


def catch_up_catalog(c: Container) -> float:
    """Run the catalog projection (only) up to the head; seconds taken."""
    head = c.head_position()
    runner = c.runner(["catalog"])
    counter = Counter("catalog events", head)
    started = time.monotonic()
    applied = 0
    while n := runner.run_once():
        applied += n
        counter.update(applied)
    counter.done()
    return time.monotonic() - started


def analyze(c: Container) -> None:
    names = [t.name for t in catalog_tables.values()]
    with c.engine.begin() as conn:
        if c.engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE TABLE " + ", ".join(f"`{n}`" for n in names)))


def row_counts(c: Container) -> dict[str, int]:
    with c.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for key, t in catalog_tables.items()
            if key in ("products", "terms", "prices", "intervals")
        }


# --- query shapes ---------------------------------------------------------------------------
Make = Callable[[random.Random], tuple[ProductSearch, PageRequest]]


def shapes(made: Catalogue) -> dict[str, Make]:
    common = [
        "保濕",
        "乳液",
        "茶包",
        "耳機",
        "無線",
        "有機",
        "慢跑鞋",
        "洗髮精",
        "咖啡",
        "收納",
        "面膜",
        "防水",
    ]
    multi = [f"{adj}{kind} {spec}" for _, adj, kind, spec in made.sample_names[:100]]
    multi += [f"{brand} {kind}" for brand, _, kind, _ in made.sample_names[100:200]]
    multi = multi or ["保濕乳液 200ml"]
    english = [
        "nike",
        "wireless",
        "running shoes",
        "sony",
        "coffee beans",
        "yoga mat",
        "usb-c",
        "lotion",
    ]
    nothing = ["量子蛋糕機", "xyzzy", "不存在的商品", "火星土壤 1kg", "qwertyuiop"]
    sub_or_root = [cid for cid, _ in made.subs] + [cid for cid, _ in made.roots]

    def keyword_category_price(rng: random.Random) -> tuple[ProductSearch, PageRequest]:
        leaf = rng.choice(made.leaves)
        scope = rng.choice((leaf.sub_id, leaf.root_id))
        low = rng.choice((0, 100, 300, 500))
        high = low + rng.choice((500, 1000, 3000, 10000))
        q = rng.choice((leaf.kind, rng.choice(leaf.domain.adjectives)))
        return ProductSearch(
            q=q, category_id=scope, min_price=Decimal(low), max_price=Decimal(high)
        ), PageRequest()

    return {
        "a common zh keyword": lambda r: (
            ProductSearch(q=r.choice(common)),
            PageRequest(r.randint(1, 3)),
        ),
        "b rare/multi-term zh": lambda r: (ProductSearch(q=r.choice(multi)), PageRequest()),
        "c english keyword": lambda r: (
            ProductSearch(q=r.choice(english)),
            PageRequest(r.randint(1, 2)),
        ),
        "d kw+category+price": keyword_category_price,
        "e category, sort=price": lambda r: (
            ProductSearch(category_id=r.choice(sub_or_root), sort=r.choice(("price", "-price"))),
            PageRequest(r.randint(1, 3)),
        ),
        "f newest, page 50": lambda r: (
            ProductSearch(sort="newest"),
            PageRequest(r.randint(45, 55)),
        ),
        "g bestselling, all": lambda r: (
            ProductSearch(sort="bestselling"),
            PageRequest(r.randint(1, 5)),
        ),
        "h no match": lambda r: (ProductSearch(q=r.choice(nothing)), PageRequest()),
    }


HTTP_SHAPES = (
    "a common zh keyword",
    "c english keyword",
    "d kw+category+price",
    "f newest, page 50",
)


def http_params(search: ProductSearch, page: PageRequest) -> dict[str, str]:
    params = {"page": str(page.page), "pageSize": str(page.page_size)}
    for key, value in (
        ("q", search.q),
        ("categoryId", search.category_id),
        ("minPrice", search.min_price),
        ("maxPrice", search.max_price),
        ("sort", search.sort),
    ):
        if value is not None:
            params[key] = str(value)
    return params


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)  # ms
    hits: list[int] = field(default_factory=list)

    def pct(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def measure(
    c: Container, makes: dict[str, Make], repeat: int, rng: random.Random
) -> dict[str, Timing]:
    results: dict[str, Timing] = {}
    for name, make in makes.items():
        for _ in range(min(20, repeat)):  # warm caches and the connection pool
            search_products(c.engine, *make(rng))
        timing = Timing()
        for _ in range(repeat):
            search, page = make(rng)
            started = time.perf_counter()
            result = search_products(c.engine, search, page)
            timing.samples.append((time.perf_counter() - started) * 1000)
            timing.hits.append(result["pagination"]["totalItems"])
        results[name] = timing
    return results


def measure_http(
    c: Container, makes: dict[str, Make], repeat: int, rng: random.Random
) -> dict[str, Timing]:
    with warnings.catch_warnings():  # starlette's "use httpx2" notice
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from api.app import create_app

    results: dict[str, Timing] = {}
    # Leaving the client closes the container (the app's lifespan does), so this runs last.
    with TestClient(create_app(c, run_background=False, run_mail=False)) as client:
        for name in HTTP_SHAPES:
            make = makes[name]
            for _ in range(min(20, repeat)):
                client.get(
                    "/api/catalog/products", params=http_params(*make(rng))
                ).raise_for_status()
            timing = Timing()
            for _ in range(repeat):
                params = http_params(*make(rng))
                started = time.perf_counter()
                response = client.get("/api/catalog/products", params=params)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                timing.samples.append(elapsed)
                timing.hits.append(response.json()["pagination"]["totalItems"])
            results[name] = timing
    return results


def print_table(title: str, results: dict[str, Timing]) -> float:
    print(f"\n{title}")
    print(
        f"  {'shape':24} {'n':>4} {'hits(med)':>9} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  target"
    )
    everything = Timing()
    for name, t in results.items():
        p95 = t.pct(95)
        verdict = "ok" if p95 < TARGET_MS else "MISS"
        print(
            f"  {name:24} {len(t.samples):>4} {int(statistics.median(t.hits)):>9} {t.pct(50):>7.1f}"
            f" {p95:>7.1f} {t.pct(99):>7.1f} {max(t.samples):>7.1f}  {verdict}"
        )
        everything.samples += t.samples
    overall = everything.pct(95)
    print(
        f"  {'overall':24} {len(everything.samples):>4} {'':>9} {everything.pct(50):>7.1f} {overall:>7.1f}"
        f" {everything.pct(99):>7.1f} {max(everything.samples):>7.1f}  (ms)"
    )
    return overall


# --- --explain: where the time goes, statement by statement --------------------------------
@contextmanager
def statement_log(engine: Engine) -> Iterator[list[tuple[str, Any, float]]]:
    log: list[tuple[str, Any, float]] = []

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        log.append(
            (statement, parameters, (time.perf_counter() - conn.info.pop("bench_started")) * 1000)
        )

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(c: Container, makes: dict[str, Make], rng: random.Random, runs: int = 15) -> None:
    engine = c.engine
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    for name, make in makes.items():
        search, page = make(rng)
        per_statement: dict[str, list[float]] = {}
        params: dict[str, Any] = {}
        with statement_log(engine) as log:
            for _ in range(runs):
                search_products(engine, search, page)
        for statement, parameters, ms in log:
            per_statement.setdefault(statement, []).append(ms)
            params[statement] = parameters
        print(f"\n### {name}: {search} page={page.page}")
        for statement, times in per_statement.items():
            median = statistics.median(times)
            print(f"  {median:8.2f} ms  {' '.join(statement.split())[:160]}")
            if median >= 5:
                with engine.connect() as conn:
                    rows = conn.exec_driver_sql(prefix + statement, params[statement]).all()
                print("      full SQL: " + " ".join(statement.split()))
                print("      params: " + repr(params[statement])[:300])
                for row in rows:
                    print("      | " + " | ".join("" if v is None else str(v) for v in row))


# --- main -----------------------------------------------------------------------------------
def run_backend(backend: str, args: argparse.Namespace) -> None:
    rng = random.Random(SEED)
    with database(backend) as url:
        c = container_for(url)
        try:
            print(f"\n## {backend}: seeding {args.products:,} products", flush=True)
            started = time.monotonic()
            made = seed(c, args.products, rng)
            seeded = time.monotonic() - started
            print(
                f"# {backend}: seeded {made.events:,} events ({len(made.roots) + len(made.subs) + len(made.leaves)}"
                f" categories, {SELLERS} sellers, {made.products:,} products) in {seeded:.1f} s"
                f" ({made.events / seeded:,.0f} ev/s)",
                flush=True,
            )
            caught = catch_up_catalog(c)
            print(
                f"# {backend}: catalog catch-up {caught:.1f} s ({made.events / caught:,.0f} ev/s)",
                flush=True,
            )
            if args.analyze:
                analyze(c)
                print(f"# {backend}: ANALYZE done", flush=True)
            counts = " ".join(f"{k}={v:,}" for k, v in row_counts(c).items())
            print(f"# {backend}: {counts}", flush=True)
            queries = random.Random(SEED + 1)
            makes = shapes(made)
            direct = measure(c, makes, args.repeat, queries)
            print_table(f"{backend}: search_products, warm, ms", direct)
            if args.explain:
                explain(c, makes, queries)
            if args.http_repeat:
                over_http = measure_http(c, makes, args.http_repeat, queries)
                print_table(f"{backend}: GET /api/catalog/products via TestClient, ms", over_http)
        finally:
            c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per query shape")
    parser.add_argument(
        "--http-repeat", type=int, default=100, help="timed HTTP calls per shape (0: skip)"
    )
    parser.add_argument("--explain", action="store_true", help="per-statement times and plans")
    parser.add_argument(
        "--analyze", action="store_true", help="ANALYZE the read model before timing"
    )
    args = parser.parse_args()
    print(
        f"# bench.search: {args.products:,} products, {args.repeat} calls per shape, target p95 < {TARGET_MS:.0f} ms"
    )
    for backend in args.backends.split(","):
        run_backend(backend, args)


if __name__ == "__main__":
    main()
