"""Reading feed files (CSV, JSON Lines, JSON) into raw records, and telling a half-written file by its cut tail.

Shared by the connector (to count orders and to see a half-written file) and by ``pipelines/feed.py``.
Values stay as the file holds them: CSV cells are strings, JSON numbers with a fraction are kept as
their exact text (never a binary float).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

FORMATS = ("csv", "jsonl", "json")
# A complete "key": value pair (string or integer) in a cut JSON line: enough to name the cut order.
_PAIR = re.compile(r'"([^"\\]+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*[,}]')
KINDS = {fmt: f"feed.{fmt}" for fmt in FORMATS}
EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


@dataclass
class Parsed:
    """What a feed file holds.

    Attributes:
        records: raw records (dicts), each with the problem found reading it (None when it read fine).
        tail: the cut last line of a half-written CSV/JSONL file (no newline at the end and it does not
            parse), decoded with replacement characters; None when the file ends cleanly.
        tail_reason: why the tail does not parse.
        tail_fields: the tail's CSV cells that are complete (all but the cut one), keyed by header.
        error: why the whole body is unreadable (JSON that does not parse, no CSV header); None when readable.
    """

    records: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    tail: str | None = None
    tail_reason: str | None = None
    tail_fields: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def half_written(self) -> bool:
        """The file looks like it was still being written."""
        return self.tail is not None or self.error is not None


def detect_format(name: str, body: bytes, fmt: str = "auto") -> str:
    """``csv``, ``jsonl`` or ``json``: the configured format, else by extension, else by content."""
    if fmt != "auto":
        return fmt
    by_ext = EXTENSIONS.get(PurePosixPath(name.split("?", 1)[0]).suffix.lower())
    if by_ext:
        return by_ext
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        first = body.lstrip().split(b"\n", 1)[0]
        try:
            json.loads(first)
        except ValueError:
            return "json"  # an object spread over several lines
        return "jsonl"
    return "csv"


def _loads(text: str) -> Any:
    # Fractional numbers stay exact text: money is parsed with Decimal downstream, never float.
    return json.loads(text, parse_float=str)


def _split_tail(body: bytes) -> tuple[bytes, bytes]:
    """(everything up to the last newline, what follows it); the tail is empty when the body ends in a newline."""
    if not body or body.endswith(b"\n"):
        return body, b""
    cut = body.rfind(b"\n")
    return body[: cut + 1], body[cut + 1:]


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig") if data.startswith(b"\xef\xbb\xbf") else data.decode("utf-8")


def _whole_lines(body: bytes, out: Parsed) -> tuple[str | None, bytes]:
    """The text of the body's whole lines and the bytes after its last newline; None (with ``out.error``)
    when the lines are not UTF-8."""
    head, tail = _split_tail(body)
    try:
        return _decode(head), tail
    except UnicodeDecodeError as exc:
        out.error = f"not UTF-8 text ({exc}); save the file as UTF-8"
        return None, tail


def _parse_csv(body: bytes) -> Parsed:
    out = Parsed()
    text, tail = _whole_lines(body, out)
    if text is None:
        return out
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        rows = list(reader)
    except csv.Error as exc:
        out.error = f"not readable as CSV ({exc})"
        return out
    if header is None:
        if not tail:
            out.error = "empty file: no header row"
        return out  # only a header (or part of one) so far: no records yet
    header = [h.strip() for h in header]
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        problem = None if len(row) == len(header) else f"row {n} has {len(row)} fields where the header has {len(header)}"
        out.records.append((dict(zip(header, row, strict=False)), problem))
    if tail:
        last, why = _csv_tail(tail, header)
        if last is not None:
            out.records.append((last, None))
        else:
            out.tail = tail.decode("utf-8", errors="replace")
            out.tail_reason = why
            try:
                cells = next(csv.reader(io.StringIO(out.tail, newline="")), [])
            except csv.Error:
                cells = []
            out.tail_fields = dict(zip(header, cells[:-1], strict=False))
    return out


def _csv_tail(tail: bytes, header: list[str]) -> tuple[dict[str, str] | None, str]:
    """The last record when it is whole, else (None, why it is not)."""
    try:
        text = tail.decode("utf-8")
    except UnicodeDecodeError:
        return None, "it ends inside a multi-byte character"
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None, "it ends inside a quoted field"
    if len(rows) != 1 or len(rows[0]) != len(header):
        got = len(rows[0]) if rows else 0
        return None, f"it has {got} of the header's {len(header)} fields"
    return dict(zip(header, rows[0], strict=True)), ""


def _parse_jsonl(body: bytes) -> Parsed:
    out = Parsed()
    text, tail = _whole_lines(body, out)
    if text is None:
        return out
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except ValueError as exc:
            out.records.append(({"_line": line}, f"line {n} is not valid JSON ({exc})"))
            continue
        if isinstance(value, dict):
            out.records.append((value, None))
        else:
            out.records.append(({"_line": line}, f"line {n} is a JSON {type(value).__name__}, not an order object"))
    if tail.strip():
        try:
            value = _loads(tail.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            out.tail = tail.decode("utf-8", errors="replace")
            out.tail_reason = f"it is not valid JSON ({exc})"
            out.tail_fields = {k: json.loads(v) if v.startswith('"') else v for k, v in _PAIR.findall(out.tail)}
        else:
            ok = isinstance(value, dict)
            out.records.append((value if ok else {"_line": tail.decode()},
                                None if ok else "the last line is not an order object"))
    return out


def _parse_json(body: bytes) -> Parsed:
    out = Parsed()
    try:
        data = _loads(_decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        out.error = f"not valid JSON ({exc}): the file is incomplete (still being written?) or not JSON"
        return out
    if isinstance(data, dict) and isinstance(data.get("orders"), list):
        data = data["orders"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        out.error = f"expected a JSON array of orders or an object with an 'orders' array, got a {type(data).__name__}"
        return out
    for n, value in enumerate(data, start=1):
        if isinstance(value, dict):
            out.records.append((value, None))
        else:
            out.records.append(({"_item": value}, f"item {n} is a JSON {type(value).__name__}, not an order object"))
    return out


def parse(body: bytes, fmt: str) -> Parsed:
    """Read a feed body of format ``csv``, ``jsonl`` or ``json``."""
    if fmt == "csv":
        return _parse_csv(body)
    if fmt == "jsonl":
        return _parse_jsonl(body)
    if fmt == "json":
        return _parse_json(body)
    raise ValueError(f"unknown feed format {fmt!r}; use one of {', '.join(FORMATS)}")


def order_key(record: dict[str, Any], mapping: dict[str, str] | None) -> str | None:
    """The order id of a raw record under ``mapping`` (None when it has none)."""
    value = record.get((mapping or {}).get("order_id", "order_id"))
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def count_orders(parsed: Parsed, mapping: dict[str, str] | None) -> int:
    """How many order records a file holds: distinct order ids, a row without an id counting alone.

    An unreadable body counts as one (it is quarantined as one record); the cut tail counts only
    when it names an order no whole row has (otherwise its order is quarantined with the rows).
    """
    if parsed.error is not None:
        return 1
    ids: set[str] = set()
    anonymous = 0
    for record, _ in parsed.records:
        key = order_key(record, mapping)
        if key is None:
            anonymous += 1
        else:
            ids.add(key)
    count = len(ids) + anonymous
    tail_id = order_key(parsed.tail_fields, mapping)
    if parsed.tail is not None and tail_id is not None and tail_id not in ids:
        count += 1
    return count
