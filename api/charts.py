"""Charts drawn on the server as inline SVG: no script, no outside asset, no build step.

Every function returns one ``<svg>`` element as a string. All text that reaches the markup
(labels, tooltips) is escaped here, so callers pass plain text. The charts scale with their
box (``viewBox``, ``width="100%"``); their colours and fonts come from the page's stylesheet
through classes (``axis``, ``grid``, ``line``, ``area``, ``bar``, ...).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

#: Label widths are estimated, not measured: a CJK character is about one em, others half.
_EM = 12.0


@dataclass(frozen=True)
class Point:
    """One point of a line chart: its x label (shown on some ticks), value and tooltip."""

    label: str
    value: float
    tip: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    tip: str = ""


def _a(value: object) -> str:
    """An attribute value, quoted and escaped."""
    return f'"{escape(str(value), quote=True)}"'


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def text_width(text: str, size: float = _EM) -> float:
    """Estimated rendered width of ``text`` in px at font size ``size``."""
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in ("W", "F"))
    return (wide + (len(text) - wide) * 0.58) * size


def clip(text: str, max_width: float, size: float = _EM) -> str:
    """``text`` shortened with an ellipsis to fit ``max_width`` px."""
    if text_width(text, size) <= max_width:
        return text
    out = ""
    for char in text:
        if text_width(out + char + "…", size) > max_width:
            break
        out += char
    return out + "…"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _svg(name: str, label: str, width: int, height: int, body: str) -> str:
    return (
        f'<svg class="chart" data-chart={_a(name)} role="img" aria-label={_a(label)} '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>{body}</svg>'
    )


def _empty(name: str, label: str, width: int, height: int, message: str) -> str:
    body = (
        f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
        f"{escape(message)}</text>"
    )
    return _svg(name, label, width, height, body)


def _y_axis(
    ticks: Sequence[float],
    y: Callable[[float], float],
    left: float,
    right: float,
    fmt: Callable[[float], str],
) -> str:
    parts = []
    for t in ticks:
        ty = y(t)
        parts.append(
            f'<line class="grid" x1="{_n(left)}" x2="{_n(right)}" y1="{_n(ty)}" y2="{_n(ty)}"/>'
            f'<text class="tick" x="{_n(left - 8)}" y="{_n(ty + 4)}" text-anchor="end">'
            f"{escape(fmt(t))}</text>"
        )
    return "".join(parts)


def line_chart(
    name: str,
    label: str,
    points: Sequence[Point],
    fmt: Callable[[float], str],
    *,
    width: int = 1100,
    height: int = 280,
    max_x_labels: int = 8,
    empty: str = "No data",
) -> str:
    """A line over evenly spaced points (days), with the area under it and a dot per point
    whose tooltip is the point's ``tip``. The y axis starts at zero."""
    if not points:
        return _empty(name, label, width, height, empty)
    values = [p.value for p in points]
    ticks = nice_ticks(0, max(max(values), 1.0))
    left = max(text_width(fmt(t), 11) for t in ticks) + 16
    right, top, bottom = width - 16, 16, height - 34
    span = ticks[-1] - ticks[0] or 1.0

    def x(i: int) -> float:
        return left + (right - left) * (i / (len(points) - 1) if len(points) > 1 else 0.5)

    def y(v: float) -> float:
        return bottom - (v - ticks[0]) / span * (bottom - top)

    coords = [(x(i), y(p.value)) for i, p in enumerate(points)]
    line = " ".join(
        f"{'M' if i == 0 else 'L'}{_n(cx)},{_n(cy)}" for i, (cx, cy) in enumerate(coords)
    )
    area = f"{line} L{_n(coords[-1][0])},{_n(bottom)} L{_n(coords[0][0])},{_n(bottom)} Z"
    every = max(1, math.ceil(len(points) / max_x_labels))
    x_labels = "".join(
        f'<text class="tick" x="{_n(x(i))}" y="{_n(bottom + 20)}" text-anchor="middle">'
        f"{escape(p.label)}</text>"
        for i, p in enumerate(points)
        if (len(points) - 1 - i) % every == 0  # anchored at the last point (today)
    )
    dots = "".join(
        f'<circle class="dot" cx="{_n(cx)}" cy="{_n(cy)}" r="3.5"><title>{escape(p.tip)}</title>'
        "</circle>"
        for p, (cx, cy) in zip(points, coords, strict=True)
    )
    body = (
        _y_axis(ticks, y, left, right, fmt)
        + f'<line class="axis" x1="{_n(left)}" x2="{_n(right)}" y1="{_n(bottom)}" '
        f'y2="{_n(bottom)}"/>'
        + f'<path class="area" d="{area}"/>'
        + f'<path class="line" d="{line}"/>'
        + dots
        + x_labels
    )
    return _svg(name, label, width, height, body)


def step_chart(
    name: str,
    label: str,
    points: Sequence[tuple[datetime, float, str]],
    until: datetime,
    fmt: Callable[[float], str],
    date_label: Callable[[datetime], str],
    *,
    width: int = 1100,
    height: int = 260,
    x_labels: int = 6,
    empty: str = "No data",
) -> str:
    """A value that holds until it changes (a price): a step line from the first point to
    ``until``, a marker (with tooltip) at each change. The y axis fits the values."""
    if not points:
        return _empty(name, label, width, height, empty)
    values = [v for _, v, _ in points]
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or max(abs(high) * 0.1, 1.0)
    ticks = nice_ticks(max(0.0, low - pad), high + pad)
    left = max(text_width(fmt(t), 11) for t in ticks) + 16
    right, top, bottom = width - 16, 16, height - 34
    start = points[0][0]
    end = max(until, points[-1][0])
    seconds = (end - start).total_seconds() or 86_400.0
    span = ticks[-1] - ticks[0] or 1.0

    def x(at: datetime) -> float:
        return left + (right - left) * (at - start).total_seconds() / seconds

    def y(v: float) -> float:
        return bottom - (v - ticks[0]) / span * (bottom - top)

    path = f"M{_n(x(start))},{_n(y(points[0][1]))}"
    for at, value, _ in points[1:]:
        path += f" H{_n(x(at))} V{_n(y(value))}"
    path += f" H{_n(x(end))}"
    markers = "".join(
        f'<circle class="dot" cx="{_n(x(at))}" cy="{_n(y(value))}" r="4"><title>{escape(tip)}'
        "</title></circle>"
        for at, value, tip in points
    )
    count = max(2, x_labels)
    labels = "".join(
        f'<text class="tick" x="{_n(left + (right - left) * i / (count - 1))}" '
        f'y="{_n(bottom + 20)}" text-anchor="{"start" if i == 0 else "end" if i == count - 1 else "middle"}">'
        f"{escape(date_label(start + (end - start) * i / (count - 1)))}</text>"
        for i in range(count)
    )
    body = (
        _y_axis(ticks, y, left, right, fmt)
        + f'<line class="axis" x1="{_n(left)}" x2="{_n(right)}" y1="{_n(bottom)}" '
        f'y2="{_n(bottom)}"/>' + f'<path class="line step" d="{path}"/>' + markers + labels
    )
    return _svg(name, label, width, height, body)


def bar_chart(
    name: str,
    label: str,
    bars: Sequence[Bar],
    *,
    width: int = 540,
    row: int = 28,
    label_width: int = 180,
    value_width: int = 150,
    empty: str = "No data",
) -> str:
    """Horizontal bars, one per row: the label on the left (shortened to fit, whole in the
    tooltip), the bar, its ``text`` after it."""
    if not bars:
        return _empty(name, label, width, 80, empty)
    height = row * len(bars) + 8
    top = max((b.value for b in bars), default=0.0) or 1.0
    room = width - label_width - value_width - 12
    parts = []
    for i, b in enumerate(bars):
        y0 = 4 + i * row
        w = max(2.0, room * max(b.value, 0.0) / top)
        bx = label_width + 8
        tip = b.tip or f"{b.label}: {b.text}"
        parts.append(
            f"<g><title>{escape(tip)}</title>"
            f'<text class="label" x="{label_width}" y="{_n(y0 + row / 2 + 4)}" text-anchor="end">'
            f"{escape(clip(b.label, label_width - 4))}</text>"
            f'<rect class="bar" x="{bx}" y="{_n(y0 + 4)}" width="{_n(w)}" '
            f'height="{row - 8}" rx="3"/>'
            f'<text class="value" x="{_n(bx + w + 6)}" y="{_n(y0 + row / 2 + 4)}">'
            f"{escape(b.text)}</text></g>"
        )
    return _svg(name, label, width, height, "".join(parts))


def funnel_chart(
    name: str,
    label: str,
    steps: Sequence[tuple[str, int]],
    rates: Sequence[str],
    *,
    width: int = 540,
    label_width: int = 130,
) -> str:
    """The funnel: one bar per step, as wide as its count against the first step's (the
    widest), and between two steps the rate from one to the next (``rates[i]`` is the rate
    from step i to step i + 1, already written out)."""
    bar_h, gap = 30, 24
    height = len(steps) * bar_h + (len(steps) - 1) * gap + 8
    widest = max((n for _, n in steps), default=0) or 1
    room = width - label_width - 70
    parts = []
    for i, (title, count) in enumerate(steps):
        y0 = 4 + i * (bar_h + gap)
        w = max(2.0, room * count / widest)
        bx = label_width + 8
        parts.append(
            f'<text class="label" x="{label_width}" y="{_n(y0 + bar_h / 2 + 4)}" '
            f'text-anchor="end">{escape(clip(title, label_width - 4))}</text>'
            f'<rect class="bar funnel-step" x="{bx}" y="{y0}" width="{_n(w)}" height="{bar_h}" '
            f'rx="3"><title>{escape(f"{title}: {count:,}")}</title></rect>'
            f'<text class="value" x="{_n(bx + w + 6)}" y="{_n(y0 + bar_h / 2 + 4)}">'
            f"{count:,}</text>"
        )
        if i < len(steps) - 1 and i < len(rates):
            parts.append(
                f'<text class="rate" x="{bx + 4}" y="{_n(y0 + bar_h + gap / 2 + 5)}">'
                f"↓ {escape(rates[i])}</text>"
            )
    return _svg(name, label, width, height, "".join(parts))


def meter(name: str, label: str, share: float | None, *, width: int = 240) -> str:
    """A share (0..1) as a filled bar with its percentage; None draws an empty track."""
    filled = 0.0 if share is None else max(0.0, min(1.0, share))
    text = "—" if share is None else f"{share * 100:.1f}%"
    track = width - 64
    body = (
        f'<rect class="track" x="0" y="4" width="{track}" height="12" rx="6"/>'
        f'<rect class="bar" x="0" y="4" width="{_n(track * filled)}" height="12" rx="6"/>'
        f'<text class="value" x="{track + 8}" y="15">{escape(text)}</text>'
    )
    return _svg(name, label, width, 20, body)
