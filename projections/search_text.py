"""Search terms for product text, the same on SQLite and MySQL (no engine-specific full text).

Text is NFKC-normalized and case-folded, then split into runs:
- CJK runs (Han, kana, Hangul; no spaces between words) give overlapping character bigrams,
  so "保濕乳液" is 保濕 濕乳 乳液 and matches "保濕乳液 200ml" but not "洗髮精". Names also
  index single characters, so a one-character query still finds names.
- Other letter/digit runs give the word, and for mixed words like "200ml" also their letter
  and digit parts ("200", "ml").
A query must match every one of its terms (AND); relevance adds up per-term weights, higher for
the name than for the description.
"""

from __future__ import annotations

import re
import unicodedata

TERM_MAX = 32
NAME_WEIGHT = 3
DESCRIPTION_WEIGHT = 1
MAX_QUERY_TERMS = 16

_CJK = (
    r"\u3041-\u309f\u30a1-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\u1100-\u11ff"
    r"\U00020000-\U0002fa1f"
)
_RUN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
_PARTS = re.compile(r"[^\W\d_]+|\d+")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def terms(text: str, *, unigrams: bool = False) -> set[str]:
    """The distinct search terms of ``text``."""
    found: set[str] = set()
    for cjk, word in _RUN.findall(normalize(text)):
        if cjk:
            if len(cjk) == 1 or unigrams:
                found.update(cjk)
            found.update(cjk[i : i + 2] for i in range(len(cjk) - 1))
        else:
            found.add(word[:TERM_MAX])
            parts = _PARTS.findall(word)
            if len(parts) > 1:
                found.update(p[:TERM_MAX] for p in parts)
    return found


def document_terms(name: str, description: str) -> dict[str, int]:
    """term -> weight for a product: name terms weigh more than description terms."""
    weights: dict[str, int] = {}
    for term in terms(name, unigrams=True):
        weights[term] = NAME_WEIGHT
    for term in terms(description):
        weights[term] = weights.get(term, 0) + DESCRIPTION_WEIGHT
    return weights


def query_terms(query: str) -> list[str]:
    """The terms a query must all match, longest first (the most selective), at most 16."""
    found = terms(query)
    # A single CJK character inside a longer CJK run is already covered by its bigrams.
    return sorted(found, key=lambda t: (-len(t), t))[:MAX_QUERY_TERMS]
