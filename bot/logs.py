"""Log hygiene for every process (web, scheduler, CLI), installed once when a Runtime is built.

- Every log record is redacted when it is created (`storage.redact.redact`): secrets and full phone/ID numbers
  never reach a handler, a file or the console — its traceback text included.
- uvicorn's access log loses its query strings: WeChat's `signature`/`msg_signature`/`nonce` (enough to replay
  a plaintext request) and the console's searches (`?q=13800001111`) are not written down.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from storage.redact import redact, register_secrets

ACCESS_LOGGER = "uvicorn.access"
_installed = False
_lock = threading.Lock()


class AccessLogWithoutQuery(logging.Filter):
    """uvicorn logs `'%s - "%s %s HTTP/%s" %d'` with (client, method, path?query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def _redacting_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        if record.name == ACCESS_LOGGER:  # its own filter drops the query; nothing else there to redact
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's own problem to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)  # the formatter prints exc_text when it is set
        return record

    factory.houqin_redacting = True  # type: ignore[attr-defined]
    return factory


def install(*secrets: str | None) -> None:
    """Register the configured secrets and install the redacting record factory and the access-log filter
    (idempotent: tests build many runtimes)."""
    global _installed
    register_secrets(*secrets)
    with _lock:
        if _installed:
            return
        if not getattr(logging.getLogRecordFactory(), "houqin_redacting", False):
            logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
        logging.getLogger(ACCESS_LOGGER).addFilter(AccessLogWithoutQuery())
        _installed = True
