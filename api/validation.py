"""Validation problems a form can use: every problem of a request at once, each with the field
it is about (a JSON path in the API's camelCase, e.g. ``items[0].quantity``), a
machine-readable ``problem`` code and a human ``message``.

Rules of the domain that need no state (email syntax, username shape, password policy, name
length, banned keywords) are also run while the body is parsed, through :func:`domain_rule`,
so they are reported together with the schema problems instead of one at a time. The command
checks them again: the aggregate stays the authority.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from aggregates.catalog import BannedKeyword, find_banned
from aggregates.errors import DomainError
from aggregates.money import InvalidMoney, as_number, parse_money
from aggregates.text import InvalidText, check_text

T = TypeVar("T")

#: pydantic's error types, in the contract's words.
_PROBLEMS = {
    "missing": "REQUIRED",
    "extra_forbidden": "UNKNOWN_FIELD",
    "string_too_short": "TOO_SHORT",
    "string_too_long": "TOO_LONG",
    "too_short": "TOO_FEW_ITEMS",
    "too_long": "TOO_MANY_ITEMS",
    "string_pattern_mismatch": "BAD_FORMAT",
    "uuid_parsing": "BAD_FORMAT",
    "greater_than": "TOO_SMALL",
    "greater_than_equal": "TOO_SMALL",
    "less_than": "TOO_LARGE",
    "less_than_equal": "TOO_LARGE",
    "literal_error": "NOT_ALLOWED_VALUE",
    "enum": "NOT_ALLOWED_VALUE",
    "json_invalid": "INVALID_JSON",
    "finite_number": "NOT_A_NUMBER",
    "decimal_max_places": "TOO_PRECISE",
    "decimal_max_digits": "TOO_LARGE",
    "decimal_whole_digits": "TOO_LARGE",
    "value_error": "INVALID",
    "assertion_error": "INVALID",
}
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def problem_code(error_type: str) -> str:
    """A stable upper-case code for a pydantic error type (or our own, passed through)."""
    if _CODE.match(error_type):
        return error_type
    if error_type in _PROBLEMS:
        return _PROBLEMS[error_type]
    if error_type.endswith(("_parsing", "_type")) or error_type.startswith("url_"):
        return "WRONG_TYPE" if not error_type.startswith("url_") else "BAD_FORMAT"
    return error_type.upper()


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "items", 0, "quantity")`` → ``items[0].quantity``; a header is
    ``header:<Name>``; a problem with the whole body is ``body``."""
    parts = list(loc)
    if parts and parts[0] == "header" and len(parts) > 1:
        return f"header:{parts[1]}"
    if parts and parts[0] in ("body", "query", "path", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not _looks_like_a_type_tag(part):
            path += f".{part}" if path else part
    return path or "body"


def _looks_like_a_type_tag(part: str) -> bool:
    # pydantic puts union members and validator tags in loc ("function-after[...]", "str").
    return "[" in part or part in ("str", "int", "float", "decimal", "bool", "list", "dict")


def problem(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "problem": code, "message": message}


def pydantic_problems(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The submitted values are left out on purpose: they may hold passwords or card numbers."""
    found: list[dict[str, Any]] = []
    for err in errors:
        message = str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        entry: dict[str, Any] = problem(
            field_path(err.get("loc", ())), problem_code(err["type"]), message
        )
        if _CODE.match(err["type"]):  # our own rules: their facts (e.g. the banned keyword)
            entry.update(err.get("ctx") or {})
        found.append(entry)
    return found


def problem_of(exc: DomainError) -> str:
    """A domain error's code: its ``problem`` attribute, else its class name in UPPER_SNAKE."""
    explicit = exc.details.get("problem", getattr(exc, "problem", None))
    if isinstance(explicit, str):
        return explicit
    return _CAMEL_BOUNDARY.sub("_", type(exc).__name__).upper()


def domain_problems(exc: DomainError, default_field: str = "body") -> list[dict[str, str]]:
    field = exc.details.get("field")
    return [
        problem(field if isinstance(field, str) else default_field, problem_of(exc), exc.message)
    ]


def domain_rule(check: Callable[[T], object]) -> Callable[[T], T]:
    """A pydantic validator running a domain rule: the rule's refusal becomes a problem of this
    field (its code from the domain error), reported with every other problem of the body."""

    def validate(value: T) -> T:
        try:
            check(value)
        except DomainError as exc:
            facts = {
                k: v
                for k, v in exc.details.items()
                if k not in ("field", "problem") and isinstance(v, str | int)
            }
            raise PydanticCustomError(problem_of(exc), exc.message, facts) from None
        return value

    return validate


class BodyRules:
    """State some rules need while a body is parsed: the banned keywords, re-read at most every
    few seconds (the command checks again against the current list, so a list changed a
    moment ago can still refuse the command; it can never let a banned word through)."""

    def __init__(self, load_banned: Callable[[], list[str]], max_age: float = 5.0) -> None:
        self._load = load_banned
        self._max_age = max_age
        self._banned: list[str] = []
        self._read_at = -math.inf

    def banned_keywords(self) -> list[str]:
        now = time.monotonic()
        if now - self._read_at > self._max_age:
            self._banned, self._read_at = self._load(), now
        return self._banned


#: Set per request by the app; None outside a request (then only stateless rules run here).
body_rules: ContextVar[BodyRules | None] = ContextVar("shopledger_body_rules", default=None)


def no_banned_keywords(field: str) -> Callable[[str], str]:
    def check(text: str) -> None:
        rules = body_rules.get()
        keyword = find_banned(text, rules.banned_keywords()) if rules is not None else None
        if keyword is not None:
            raise BannedKeyword(
                f"the {field} contains a banned keyword: {keyword}", field=field, keyword=keyword
            )

    return domain_rule(check)


def _rule_error(exc: DomainError) -> PydanticCustomError:
    facts = {
        k: v
        for k, v in exc.details.items()
        if k not in ("field", "problem") and isinstance(v, str | int)
    }
    return PydanticCustomError(problem_of(exc), exc.message, facts)


def text_rule(multiline: bool = False) -> Callable[[str, ValidationInfo], str]:
    """The one text rule (aggregates/text.py) as a pydantic validator: the text in NFC, or a
    problem of this field (``CONTROL_CHARACTER``, ``BIDI_CONTROL``, ``BLANK``, ...)."""

    def validate(value: str, info: ValidationInfo) -> str:
        name = to_camel(info.field_name) if info.field_name else "text"
        try:
            return check_text(value, name, multiline=multiline, required=False)
        except InvalidText as exc:
            raise _rule_error(exc) from None

    return validate


#: Text on one line: names, display names, titles, carriers, address lines, tags.
Text = Annotated[str, AfterValidator(text_rule())]
#: Text that may hold line breaks and tabs: descriptions, reviews, messages, reasons, notes.
MultilineText = Annotated[str, AfterValidator(text_rule(multiline=True))]


def _amount(raw: object) -> Decimal:
    try:
        return as_number(raw)
    except InvalidMoney as exc:
        raise _rule_error(exc) from None


#: An amount as a client may send it (docs/API.md "Money in requests"): a JSON number or a
#: decimal string; precision, sign and bounds are the rule of the field that holds it.
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
            ],
            "description": 'a JSON number or a decimal string ("120.50"), at most 2 decimals',
            "examples": [120, 120.5, "120.50"],
        }
    ),
]


def money_rule(value: object, currency: object) -> None:
    """The Money rule of a request body (aggregates.money.parse_money) as a problem of the
    Money field itself (``price``, ``amount``)."""
    try:
        parse_money(value, currency, "the amount")
    except InvalidMoney as exc:
        raise _rule_error(exc) from None
