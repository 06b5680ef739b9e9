"""The one text rule (aggregates/text.py) and the one Money rule (aggregates/money.py), and
their pydantic forms (api/validation.py, api/schemas.py), over all inputs."""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aggregates.money import InvalidMoney, parse_amount, parse_money
from aggregates.text import BIDI_CONTROLS, LINE_CONTROLS, InvalidText, check_text
from api.schemas import MoneyBody, RequestBody
from api.validation import MultilineText, Text, pydantic_problems

# Text of every script: letters, marks, numbers, punctuation, symbols (emoji), spaces.
ORDINARY = st.text(
    st.characters(categories=["L", "M", "N", "P", "S", "Zs"], exclude_characters="\u3164\u2800"),
    min_size=1,
    max_size=40,
).filter(lambda t: any(not ch.isspace() for ch in t) and not t[0].isspace())
CJK_AND_EMOJI = st.lists(
    st.sampled_from(
        list("台灣高山烏龍茶王小明謝謝您的支持！，。ｱｲｳ한국어")
        + ["😀", "👨\u200d👩\u200d👧", "🇹🇼", "1\ufe0f\u20e3", "❤\ufe0f", "👍🏽", "e\u0301"]
    ),
    min_size=1,
    max_size=30,
).map("".join)
CONTROLS = st.characters(categories=["Cc"]).filter(lambda ch: ch not in LINE_CONTROLS)
INVISIBLE = st.sampled_from(
    [" ", "\u3000", "\u00a0", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
    + ["\u3164", "\u2800", "\ufe0f", "\u180e"]
)


def _refusal(text: str, *, multiline: bool = False) -> str:
    with pytest.raises(InvalidText) as refused:
        check_text(text, "displayName", multiline=multiline)
    assert refused.value.details["field"] == "displayName"
    return str(refused.value.details["problem"])


@settings(max_examples=60, deadline=None)
@given(ORDINARY | CJK_AND_EMOJI)
def test_ordinary_text_of_any_script_and_emoji_is_accepted_in_nfc(text: str) -> None:
    assert check_text(text, "name") == unicodedata.normalize("NFC", text)
    assert check_text(text, "text", multiline=True) == unicodedata.normalize("NFC", text)


@settings(max_examples=60, deadline=None)
@given(ORDINARY | CJK_AND_EMOJI, st.sampled_from(sorted(BIDI_CONTROLS)), st.data())
def test_any_text_with_a_bidi_override_or_isolate_is_refused(
    text: str, bidi: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(text)))
    mixed = text[:at] + bidi + text[at:]
    assert _refusal(mixed) == "BIDI_CONTROL"
    assert _refusal(mixed, multiline=True) == "BIDI_CONTROL"


@settings(max_examples=60, deadline=None)
@given(ORDINARY | CJK_AND_EMOJI, CONTROLS, st.data())
def test_any_text_with_a_control_character_is_refused(
    text: str, control: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(text)))
    assert _refusal(text[:at] + control + text[at:], multiline=True) == "CONTROL_CHARACTER"


@given(ORDINARY, st.sampled_from(sorted(LINE_CONTROLS)))
def test_line_breaks_and_tabs_only_in_multi_line_text(text: str, brk: str) -> None:
    both = f"{text}{brk}{text}"
    assert _refusal(both) == "CONTROL_CHARACTER"
    assert check_text(both, "text", multiline=True) == unicodedata.normalize("NFC", both)


@given(st.text(INVISIBLE, min_size=1, max_size=20))
def test_text_of_only_spaces_and_invisible_characters_is_refused(text: str) -> None:
    assert _refusal(text) == "BLANK"
    assert _refusal(text, multiline=True) == "BLANK"


def test_empty_text_is_required_unless_optional_and_a_lone_surrogate_is_refused() -> None:
    assert _refusal("") == "REQUIRED"
    assert check_text("", "note", required=False) == ""
    assert _refusal("ab\ud800") == "INVALID_CHARACTER"


def test_a_refusal_names_the_character_and_where_it_is_never_the_text() -> None:
    with pytest.raises(InvalidText) as refused:
        check_text("secret\u202etxt.exe", "name")
    assert refused.value.details == {
        "field": "name",
        "problem": "BIDI_CONTROL",
        "character": "U+202E",
        "position": 6,
    }
    assert "secret" not in refused.value.message


class _Form(RequestBody):
    display_name: Text
    note: MultilineText = ""


def _problems(model: type[RequestBody], body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    errors = [dict(e) for e in refused.value.errors()]
    return [(p["field"], p["problem"]) for p in pydantic_problems(errors)]


def test_a_body_reports_each_text_field_by_its_camel_case_name() -> None:
    assert _problems(_Form, {"displayName": "a\u202eb", "note": "x\x07"}) == [
        ("displayName", "BIDI_CONTROL"),
        ("note", "CONTROL_CHARACTER"),
    ]
    assert _problems(_Form, {"displayName": "\u200b\u200b"}) == [("displayName", "BLANK")]
    form = _Form.model_validate({"displayName": " Cafe\u0301 ", "note": "line\nline"})
    assert (form.display_name, form.note) == ("Café", "line\nline")


# --- money ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "amount"),
    [
        (120, Decimal("120.00")),
        (120.5, Decimal("120.50")),
        (0.1, Decimal("0.10")),
        ("120.50", Decimal("120.50")),
        ("120.500", Decimal("120.50")),
        ("0120", Decimal("120.00")),
        (Decimal("99.99"), Decimal("99.99")),
        (1e3, Decimal("1000.00")),  # a JSON number 1e3 is a number like any other
    ],
)
def test_money_is_a_json_number_or_a_decimal_string(value: Any, amount: Decimal) -> None:
    assert parse_money(value, "TWD", "price") == amount
    assert MoneyBody.model_validate({"value": value, "currency": "TWD"}).value == amount


@pytest.mark.parametrize(
    ("value", "currency", "field", "problem"),
    [
        (True, "TWD", "value", "WRONG_TYPE"),
        (None, "TWD", "value", "WRONG_TYPE"),
        ([1], "TWD", "value", "WRONG_TYPE"),
        ({"v": 1}, "TWD", "value", "WRONG_TYPE"),
        ("1e3", "TWD", "value", "WRONG_TYPE"),
        ("12,5", "TWD", "value", "WRONG_TYPE"),
        (" 12", "TWD", "value", "WRONG_TYPE"),
        ("+12", "TWD", "value", "WRONG_TYPE"),
        ("NaN", "TWD", "value", "WRONG_TYPE"),
        ("Infinity", "TWD", "value", "WRONG_TYPE"),
        ("0x10", "TWD", "value", "WRONG_TYPE"),
        ("１２", "TWD", "value", "WRONG_TYPE"),  # full-width digits
        (float("nan"), "TWD", "value", "NOT_A_NUMBER"),  # JSON's NaN literal
        (float("inf"), "TWD", "value", "NOT_A_NUMBER"),
        (0.1 + 0.2, "TWD", "body", "TOO_PRECISE"),  # binary garbage: 0.30000000000000004
        (1.999, "TWD", "body", "TOO_PRECISE"),
        ("1.005", "TWD", "body", "TOO_PRECISE"),
        (1e30, "TWD", "body", "TOO_LARGE"),
        (0, "TWD", "body", "TOO_SMALL"),
        ("-5", "TWD", "body", "TOO_SMALL"),
        (10, "USD", "body", "NOT_ALLOWED_VALUE"),
        (10, "twd", "body", "NOT_ALLOWED_VALUE"),
    ],
)
def test_every_other_money_is_refused_by_one_rule(
    value: Any, currency: str, field: str, problem: str
) -> None:
    with pytest.raises(InvalidMoney) as refused:
        parse_money(value, currency, "price")
    assert refused.value.details["problem"] == problem
    # The body says it too: a value of the wrong type by the value, the rest by the Money.
    assert _problems(MoneyBody, {"value": value, "currency": currency}) == [(field, problem)]


def test_the_currency_is_required() -> None:
    assert _problems(MoneyBody, {"value": 10}) == [("currency", "REQUIRED")]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10**12), st.integers(0, 99))
def test_any_amount_with_two_decimals_reads_the_same_as_number_and_as_string(
    whole: int, cents: int
) -> None:
    text = f"{whole}.{cents:02d}"
    assert parse_amount(text) == parse_amount(float(text)) == Decimal(text)


def test_the_money_body_documents_both_spellings_and_requires_the_currency() -> None:
    schema = MoneyBody.model_json_schema(by_alias=True)
    assert schema["required"] == ["value", "currency"]
    assert schema["properties"]["value"]["anyOf"][0] == {"type": "number"}
    assert schema["properties"]["currency"]["enum"] == ["TWD"]
