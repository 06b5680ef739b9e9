"""Structured logs carrying the request id of the current request: one JSON object per line
(production), or one readable line with ``key=value`` fields (``SHOPLEDGER_LOG_FORMAT=text``,
the default in development). Both redact the same secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# Never let these reach a log line, whatever a caller passes in ``extra``.
_REDACTED = {
    "password",
    "passwordhash",
    "token",
    "accesstoken",
    "refreshtoken",
    "authorization",
    "cardnumber",
    "cvv",
    "secret",
    "hashkey",
    "hashiv",
}


#: A secret in a URL's query (``/api/ws?token=...``, as the server logs a WebSocket handshake).
_QUERY_SECRET = re.compile(
    r"([?&](?:token|access_?token|refresh_?token|password)=)[^&\s\"']+", re.IGNORECASE
)


def redact_query(text: str) -> str:
    return _QUERY_SECRET.sub(r"\1[redacted]", text)


def _entry(record: logging.LogRecord) -> dict[str, object]:
    """The record's fields, secrets redacted (what either format writes)."""
    entry: dict[str, object] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": redact_query(record.getMessage()),
    }
    request_id = request_id_var.get()
    if request_id:
        entry["requestId"] = request_id
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        entry[key] = "[redacted]" if key.lower().replace("_", "") in _REDACTED else value
    return entry


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  shopledger.api  request done  method=GET status=200 ...``"""

    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(record)
        ts = str(entry.pop("ts"))[11:23]
        head = f"{ts} {entry.pop('level'):<7} {entry.pop('logger')}  {entry.pop('msg')}"
        fields = " ".join(
            f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in entry.items()
        )
        line = f"{head}  {fields}" if fields else head
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
