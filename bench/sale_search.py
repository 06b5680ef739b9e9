"""Price-sorted and price-bounded search with and without sales in force (SQLite).

    python -m bench.sale_search [--products 100000] [--sales 200] [--repeat 40]

Seeds the catalogue of ``bench.search`` (same generator and seed), brings the catalog
projection up to date, times three price shapes of ``queries.catalog.search_products``, then
puts ``--sales`` products on sale (20% off, in force for an hour) and times them again.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from sqlalchemy import select

from aggregates.catalog import Product
from bench.common import container_for, database
from bench.search import SEED, catch_up_catalog, seed
from commands.application import EventMeta, recording_as
from projections.catalog import live
from queries.catalog import ProductSearch, search_products
from queries.common import PageRequest
from shopledger.bootstrap import Container


def timings(c: Container, search: ProductSearch, repeat: int) -> tuple[float, float]:
    """(p50, p95) in ms of a warm first page."""
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        search_products(c.engine, search, PageRequest(1, 20))
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    return statistics.median(spent), spent[max(0, int(len(spent) * 0.95) - 1)]


def put_on_sale(c: Container, count: int) -> None:
    products = live["products"]
    with c.engine.connect() as conn:
        ids = list(conn.execute(select(products.c.product_id).limit(count)).scalars())
    now = datetime.now(UTC)
    with recording_as(EventMeta("system:bench", "bench")):
        for pid in ids:
            product: Product = c.app.repository.get(UUID(pid))
            price = (product.price * Decimal("0.8")).quantize(Decimal("0.01"))
            product.schedule_sale(str(uuid4()), price, None, now + timedelta(hours=1), now)
            c.app.save(product)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--sales", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with database("sqlite") as url:
        c = container_for(url)
        try:
            made = seed(c, args.products, random.Random(SEED))
            catch_up_catalog(c)
            root = made.roots[0][0]
            shapes = {
                "all products, sort=price": ProductSearch(sort="price"),
                "a root category, sort=price": ProductSearch(category_id=root, sort="price"),
                "price 100-500, newest": ProductSearch(
                    min_price=Decimal(100), max_price=Decimal(500)
                ),
            }
            before = {name: timings(c, s, args.repeat) for name, s in shapes.items()}
            put_on_sale(c, args.sales)
            catch_up_catalog(c)
            print(f"| shape | no sale p50 / p95 | {args.sales} on sale p50 / p95 |")
            print("| --- | ---: | ---: |")
            for name, search in shapes.items():
                (b50, b95), (a50, a95) = before[name], timings(c, search, args.repeat)
                print(f"| {name} | {b50:.1f} / {b95:.1f} | {a50:.1f} / {a95:.1f} |")
        finally:
            c.close()


if __name__ == "__main__":
    main()
