"""Logging setup: Rich console output, and a filter that masks every secret value ever resolved."""

from __future__ import annotations

import logging
import threading

from rich.logging import RichHandler

_secret_values: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember a resolved secret so that no log line can ever show it."""
    if value and len(value) >= 4:
        with _lock:
            _secret_values.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    with _lock:
        values = sorted(_secret_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in the final message of every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once (the CLI calls this)."""
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party clients log request headers (tokens) at DEBUG; keep them quiet.
    for noisy in ("sp_api", "httpx", "httpcore", "urllib3", "shopify"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
