"""Rating summaries hold for any sequence of reviews, edits, hides and restores: the reviews
projection's averages, counts and histograms and the catalog's product rating equal what the
visible reviews say, incrementally and after a rebuild of both projections."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.accounts import Account
from aggregates.catalog import Category, Product
from aggregates.errors import Conflict
from aggregates.reviews import Review
from commands.application import EventMeta, recording_as
from projections.catalog import Catalog
from projections.rebuild import rebuild
from projections.reviews import Reviews
from queries import reviews as rq
from queries.catalog import get_product
from shopledger.bootstrap import Container, bootstrap
from tests.conftest import make_settings

PRODUCTS = 2
REVIEWS = 4
AT = datetime(2026, 3, 1, tzinfo=UTC)
score = st.integers(1, 10)
operation = st.one_of(
    st.tuples(st.just("write"), st.integers(0, REVIEWS - 1), score, score),
    st.tuples(
        st.just("edit"),
        st.integers(0, REVIEWS - 1),
        st.none() | score,
        st.none() | score,
    ),
    st.tuples(st.sampled_from(["hide", "restore"]), st.integers(0, REVIEWS - 1)),
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    tmp = tmp_path_factory.mktemp("ratings")
    c = bootstrap(make_settings(f"sqlite:///{tmp / 'ratings.db'}", tmp))
    yield c
    c.close()


def expected(reviews: list[Review], key: str, subject_id: str, attr: str) -> dict[str, Any]:
    scores = [getattr(r, attr) for r in reviews if not r.hidden and getattr(r, key) == subject_id]
    average = None
    if scores:  # one decimal, half up, in integers
        average = ((20 * sum(scores) + len(scores)) // (2 * len(scores))) / 10
    return {
        "average": average,
        "count": len(scores),
        "histogram": {str(s): scores.count(s) for s in range(1, 11)},
    }


def check(c: Container, reviews: list[Review], products: list[str], seller: str) -> None:
    with c.engine.connect() as conn:
        for pid in products:
            want = expected(reviews, "product_id", pid, "product_score")
            assert rq.summary(conn, "product", pid) == want
            shown = get_product(c.engine, pid)
            assert shown is not None
            assert (shown["rating"], shown["reviewCount"]) == (want["average"], want["count"])
        assert rq.summary(conn, "seller", seller) == expected(
            reviews, "seller_id", seller, "seller_score"
        )


def play(c: Container, operations: list[tuple[Any, ...]]) -> tuple[list[Review], list[str], str]:
    """Save a seller, its products and the reviews ``operations`` make (invalid steps, like
    editing a review never written, are skipped); answer (reviews, product ids, seller id)."""
    with recording_as(EventMeta("system:test", "ratings")):
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
        products = [
            Product.list_new(
                uuid4(),
                seller_id=str(seller.id),
                name="商品",
                description="",
                category_id=str(category.id),
                price=Decimal(100),
                images=[],
                supplier_ids=[],
                banned=(),
                at=AT,
            )
            for _ in range(PRODUCTS)
        ]
        c.app.save(seller, category, *products)
        product_ids = [str(p.id) for p in products]
        written: dict[int, Review] = {}
        at = AT
        for op in operations:
            at += timedelta(minutes=1)
            kind, n = op[0], op[1]
            review = written.get(n)
            try:
                if kind == "write" and review is None:
                    review = written[n] = Review.write(
                        order_id=str(uuid4()),
                        product_id=product_ids[n % PRODUCTS],
                        seller_id=str(seller.id),
                        buyer_id=str(uuid4()),
                        reviewer_name="買家",
                        product_score=op[2],
                        seller_score=op[3],
                        text="",
                        images=[],
                        banned=[],
                        at=at,
                    )
                elif kind == "edit" and review is not None:
                    review.edit(
                        product_score=op[2],
                        seller_score=op[3],
                        text=None,
                        images=None,
                        banned=[],
                        at=at,
                    )
                elif kind == "hide" and review is not None:
                    review.hide("admin", "spam", at)
                elif kind == "restore" and review is not None:
                    review.restore("admin", "appeal", at)
            except Conflict:
                pass  # hiding a hidden review, restoring a shown one: refused, nothing changes
            if review is not None and review.pending_events:
                c.app.save(review)
    return list(written.values()), product_ids, str(seller.id)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(operation, max_size=14))
def test_summaries_equal_the_visible_reviews_for_any_history(
    shop: Container, operations: list[tuple[Any, ...]]
) -> None:
    reviews, products, seller = play(shop, operations)
    shop.catch_up()
    check(shop, reviews, products, seller)


def test_a_rebuild_gives_the_same_summaries(database_url: str, tmp_path: Path) -> None:
    c = bootstrap(make_settings(database_url, tmp_path))
    try:
        history = [
            ("write", 0, 10, 9),
            ("write", 1, 3, 4),
            ("write", 2, 7, 7),
            ("edit", 0, 6, None),
            ("hide", 1),
            ("write", 3, 8, 2),
            ("edit", 1, 9, 9),  # edited while hidden: still out of every summary
            ("hide", 2),
            ("restore", 2),
            ("edit", 3, None, 10),
        ]
        reviews, products, seller = play(c, history)
        c.catch_up()
        check(c, reviews, products, seller)
        for projection in (Reviews, Catalog):
            rebuild(c.app, projection, c.locks, batch_size=3)
        check(c, reviews, products, seller)
    finally:
        c.close()
