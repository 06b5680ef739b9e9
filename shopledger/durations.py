"""ISO 8601 durations (``PT30M``, ``P7D``, ``PT0.5S``) for settings."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration; years and months are refused (their length varies)."""
    match = _DURATION.match(text.strip().upper())
    if match is None:
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration such as PT30M, PT3H, P7D or PT0.5S"
            " (years and months are not accepted)"
        )
    parts = {k: float((v or "0").replace(",", ".")) for k, v in match.groupdict().items()}
    return timedelta(**parts)


def format_duration(value: timedelta) -> str:
    """Render a timedelta as an ISO 8601 duration (inverse of :func:`parse_duration`)."""
    total = value.total_seconds()
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P"
    if days:
        out += f"{int(days)}D"
    time = ""
    if hours:
        time += f"{int(hours)}H"
    if minutes:
        time += f"{int(minutes)}M"
    if seconds:
        time += f"{seconds:g}S"
    if time:
        out += "T" + time
    return out if out != "P" else "PT0S"
