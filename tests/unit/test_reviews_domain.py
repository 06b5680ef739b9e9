"""The Review aggregate's rules, in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregates.errors import Conflict
from aggregates.reviews import (
    InvalidReview,
    Review,
    ReviewAlreadyReplied,
    ReviewNotEditable,
    mask_name,
)

AT = datetime(2026, 5, 1, tzinfo=UTC)


def written(**overrides: Any) -> Review:
    fields: dict[str, Any] = {
        "order_id": "o-1",
        "product_id": "p-1",
        "seller_id": "s-1",
        "buyer_id": "b-1",
        "reviewer_name": "王小明",
        "product_score": 9,
        "seller_score": 8,
        "text": "很好",
        "images": [],
        "banned": ["仿冒"],
        "at": AT,
    }
    return Review.write(**{**fields, **overrides})


def test_one_order_and_product_always_make_the_same_review_id() -> None:
    assert written().id == written().id == Review.create_id("o-1", "p-1")
    assert written(product_id="p-2").id != written().id


@given(st.integers(-100, 100))
def test_scores_outside_one_to_ten_are_refused_and_inside_kept(value: int) -> None:
    if 1 <= value <= 10:
        assert written(product_score=value).product_score == value
    else:
        with pytest.raises(InvalidReview) as refused:
            written(product_score=value)
        assert refused.value.details["field"] == "productScore"


@pytest.mark.parametrize("value", [True, 9.0, "9", None])
def test_a_score_must_be_an_integer(value: Any) -> None:
    with pytest.raises(InvalidReview):
        written(seller_score=value)


@pytest.mark.parametrize(
    "text",
    ["x" * 2001, "bell\x07", "正品，非仿冒", "正品，非仿 冒"],
)
def test_bad_texts_are_refused(text: str) -> None:
    with pytest.raises(InvalidReview) as refused:
        written(text=text)
    assert refused.value.details["field"] == "text"


def test_line_breaks_and_tabs_are_text_and_the_name_is_masked() -> None:
    review = written(text="第一行\n\t第二行")
    assert review.text == "第一行\n\t第二行"
    assert review.reviewer_name == "王**" and mask_name("") == "**"


@pytest.mark.parametrize(
    "images",
    [
        [f"https://img.example.com/{n}.jpg" for n in range(6)],
        ["javascript:alert(1)"],
        ["https://img.example.com/a.jpg", "https://img.example.com/a.jpg"],
    ],
)
def test_bad_images_are_refused(images: list[str]) -> None:
    with pytest.raises(InvalidReview):
        written(images=images)


def test_edits_within_thirty_days_only_and_no_event_when_nothing_changes() -> None:
    review = written()
    review.collect_events()
    assert not review.edit(
        product_score=9, seller_score=None, text=None, images=None, banned=[], at=AT
    )
    assert review.pending_events == []
    assert review.edit(product_score=3, seller_score=None, text=None, images=None, banned=[], at=AT)
    assert (review.product_score, review.seller_score, review.edits) == (3, 8, 1)
    with pytest.raises(ReviewNotEditable):
        review.edit(
            product_score=4,
            seller_score=None,
            text=None,
            images=None,
            banned=[],
            at=AT + timedelta(days=30, seconds=1),
        )


def test_the_seller_replies_once_and_admins_hide_and_restore_with_a_reason() -> None:
    review = written()
    review.answer("s-1", "謝謝", [], AT)
    with pytest.raises(ReviewAlreadyReplied):
        review.answer("s-1", "再謝", [], AT)
    with pytest.raises(InvalidReview):
        review.hide("admin", "   ", AT)
    review.hide("admin", "spam", AT)
    assert review.hidden and review.hidden_reason == "spam"
    with pytest.raises(Conflict):
        review.hide("admin", "spam", AT)
    review.restore("admin", "appeal", AT)
    assert not review.hidden
    with pytest.raises(Conflict):
        review.restore("admin", "appeal", AT)
