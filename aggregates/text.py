"""The one rule for text people type: names, display names, product names and descriptions,
reviews, messages, reasons, notes, addresses.

Text is normalised to NFC and refused (a :class:`InvalidText`, 400 naming the field) when it
holds

- a control character (C0, DEL, C1), except line feed, carriage return and tab in multi-line
  text; the line and paragraph separators U+2028/U+2029 count as line breaks;
- a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069): they make text display
  in another order than it is stored ("Trojan Source");
- a lone surrogate (not a character at all; no database can store it);
- nothing visible: only spaces and invisible characters (zero-width space, joiners, word
  joiner, BOM, soft hyphen, Hangul fillers, variation selectors, ...).

Ordinary text of any script passes untouched, emoji included (a family emoji holds zero-width
joiners, a flag or a keycap variation selectors: they are fine between visible characters).
Pure domain code: the API runs it while a body is parsed, the aggregates run it again.
"""

from __future__ import annotations

import unicodedata

from aggregates.errors import DomainError

#: Line breaks and the tab: allowed in multi-line text only.
LINE_CONTROLS = frozenset("\n\r\t\u2028\u2029")
#: Bidirectional embeddings, overrides and isolates (not the LRM/RLM/ALM marks, which
#: right-to-left scripts need and which cannot reorder text by themselves).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Characters that draw nothing although they are not format characters (Cf) or spaces.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u180e")


class InvalidText(DomainError):
    """Text breaks the rule above (400 VALIDATION_ERROR; ``field``, ``problem``)."""


def _invisible(ch: str) -> bool:
    if ch.isspace() or ch in _INVISIBLE:
        return True
    if unicodedata.category(ch) == "Cf":  # zero-width space/joiners, word joiner, BOM, ...
        return True
    code = ord(ch)  # variation selectors only decorate a visible character
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF


def _point(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def _refusal(ch: str, multiline: bool) -> tuple[str, str] | None:
    """(problem, what is wrong) when ``ch`` may not appear in the text, else None."""
    if ch in BIDI_CONTROLS:
        return "BIDI_CONTROL", "must not contain bidirectional override or isolate characters"
    if ch in LINE_CONTROLS:
        return (
            None if multiline else ("CONTROL_CHARACTER", "must be one line: no line breaks or tabs")
        )
    category = unicodedata.category(ch)
    if category == "Cc":
        return "CONTROL_CHARACTER", "must not contain control characters"
    if category == "Cs":
        return "INVALID_CHARACTER", "holds a lone surrogate, which is not a character"
    return None


def check_text(
    raw: str,
    field: str,
    *,
    multiline: bool = False,
    required: bool = True,
    error: type[DomainError] = InvalidText,
) -> str:
    """``raw`` in NFC if it follows the rule, else ``error`` (:class:`InvalidText` unless an
    aggregate names its own) naming ``field``.

    Empty text is refused when ``required`` (problem ``REQUIRED``) and returned otherwise;
    text that is not empty but shows nothing is always refused (``BLANK``)."""
    text = unicodedata.normalize("NFC", raw)
    for index, ch in enumerate(text):
        refused = _refusal(ch, multiline)
        if refused is not None:
            problem, what = refused
            raise error(
                f"{field} {what} ({_point(ch)} at position {index})",
                field=field,
                problem=problem,
                character=_point(ch),
                position=index,
            )
    if not text:
        if required:
            raise error(f"{field} is required", field=field, problem="REQUIRED")
        return text
    if all(_invisible(ch) for ch in text):
        raise error(
            f"{field} must contain visible characters, not only spaces or invisible ones",
            field=field,
            problem="BLANK",
        )
    return text
