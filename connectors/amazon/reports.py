"""Order history through the Reports API 2021-06-30: create, poll, fetch the document, check it whole.

A backfill of a year at searchOrders' 0.0056 requests/s would take weeks; one
``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` report covers up to 30 days in a handful of
calls. The report carries no buyer identity (README.md "Canonical rows from a report"), so its rows
are *partial* versions that a full Orders API version of the same order outranks.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.amazon.client import AmazonClient, RawResponse
from connectors.landing import Part
from orderhub import clock
from orderhub.errors import FatalError, RetriableError

log = logging.getLogger(__name__)

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
KIND_REPORT = f"amazon.reports.{REPORT_TYPE}"
# createReport: "dataStartTime ... dataEndTime" of this report type may span at most 30 days.
REPORT_WINDOW = timedelta(days=30)
# Reports lag the Orders API by up to 30 minutes: the last hour of any window is read through the
# Orders API as well, and the overlap dedupes by order id and version.
REPORT_OVERLAP = timedelta(hours=1)
REQUIRED_COLUMNS = ("amazon-order-id", "purchase-date", "last-updated-date", "order-status")
TERMINAL = {"DONE", "FATAL", "CANCELLED"}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def inspect_report(body: bytes, charset: str | None) -> int:
    """The number of distinct orders in a report document, after checking that it is whole.

    Raises:
        RetriableError: the bytes do not decode, the header lacks a required column, or a row has
            another number of fields than the header (a cut-off download); fetching again may help.
    """
    try:
        text = body.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise RetriableError(f"amazon report document does not decode as {charset or 'utf-8'} ({exc}); will fetch "
                             f"it again", channel="amazon") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise RetriableError("amazon report document is empty (no header row); will fetch it again", channel="amazon")
    header = lines[0].rstrip("\r").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RetriableError(f"amazon report document lacks the column(s) {', '.join(missing)}; will fetch it again",
                             channel="amazon")
    tabs = len(header) - 1
    id_at = header.index("amazon-order-id")
    orders: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        if line.count("\t") != tabs:
            raise RetriableError(f"amazon report document row {number} has {line.count(chr(9)) + 1} fields, the "
                                 f"header {tabs + 1} (cut off?); will fetch it again", channel="amazon")
        orders.add(line.split("\t", id_at + 1)[id_at])
    return len(orders)


@dataclass
class ReportRunner:
    """One store's order reports: request one window, wait for it, and fetch its document.

    Attributes:
        poll_initial, poll_factor, poll_max: the getReport polling schedule (seconds; backoff).
        download_attempts: getReportDocument + download attempts (URLs expire minutes after issue).
    """

    client: AmazonClient
    sleep: Callable[[float], None]
    poll_initial: float = 5.0
    poll_factor: float = 1.5
    poll_max: float = 60.0
    download_attempts: int = 3

    @property
    def store_key(self) -> str:
        """The store's key."""
        return self.client.store.key

    def create(self, start: datetime, end: datetime) -> str:
        """``createReport`` for orders last updated in ``[start, end)``; the report's id."""
        body = {"reportType": REPORT_TYPE, "marketplaceIds": self.client.store.marketplaces,
                "dataStartTime": _iso(start), "dataEndTime": _iso(end)}
        data = self.client.create_report(body).data
        report_id = data.get("reportId") if isinstance(data, dict) else None
        if not report_id:
            raise FatalError(f"amazon createReport answered without a reportId: {str(data)[:200]}", channel="amazon")
        log.info("amazon %s: requested order report %s for %s to %s", self.store_key, report_id, _iso(start), _iso(end))
        return str(report_id)

    def status(self, report_id: str) -> dict[str, Any]:
        """One ``getReport``."""
        data = self.client.get_report(report_id).data
        if not isinstance(data, dict) or "processingStatus" not in data:
            raise RetriableError(f"amazon getReport {report_id} answered without a processingStatus", channel="amazon")
        return data

    def wait(self, report_id: str, timeout: float) -> dict[str, Any]:
        """Poll ``getReport`` with backoff until the report is DONE, FATAL or CANCELLED.

        Raises:
            RetriableError: still IN_QUEUE/IN_PROGRESS after ``timeout`` seconds of waiting; the report's id
                stays in the cursor and the next run resumes polling it.
        """
        waited, delay = 0.0, self.poll_initial
        while True:
            report = self.status(report_id)
            state = report["processingStatus"]
            if state in TERMINAL:
                return report
            if waited >= timeout:
                raise RetriableError(
                    f"amazon report {report_id} of store {self.store_key!r} is still {state} after {waited:.0f} s; "
                    f"nothing after its window was marked done. The next run resumes polling it (and requests a "
                    f"new one if Amazon has not started it within {4 * timeout / 60:.0f} minutes)",
                    channel="amazon", retry_after=self.poll_max)
            self.sleep(delay)
            waited += delay
            delay = min(delay * self.poll_factor, self.poll_max)

    def document(self, report: dict[str, Any], start: datetime, end: datetime) -> Part:
        """Fetch a DONE report's document at once, gunzip it, check it whole, and make it a landing part.

        Raises:
            RetriableError: the document stayed unreadable after ``download_attempts`` fresh URLs.
        """
        document_id = str(report.get("reportDocumentId") or "")
        if not document_id:
            raise RetriableError(f"amazon report {report.get('reportId')} is DONE without a reportDocumentId",
                                 channel="amazon")
        last: Exception | None = None
        for attempt in range(1, self.download_attempts + 1):
            try:
                body, charset = self._fetch(document_id)
                records = inspect_report(body, charset)
            except (RetriableError, FatalError) as exc:
                last = exc
                log.warning("amazon %s: report document %s attempt %d/%d failed: %s", self.store_key, document_id,
                            attempt, self.download_attempts, exc)
                continue
            request = {"reportId": report.get("reportId"), "reportDocumentId": document_id,
                       "dataStartTime": _iso(start), "dataEndTime": _iso(end),
                       "marketplaceIds": self.client.store.marketplaces, "charset": charset or "utf-8"}
            log.info("amazon %s: report %s holds %d orders", self.store_key, report.get("reportId"), records)
            return Part(KIND_REPORT, body, records, request)
        raise RetriableError(f"amazon report document {document_id} stayed unreadable after {self.download_attempts} "
                             f"attempts ({last}); the next run fetches it again", channel="amazon")

    def error_details(self, report: dict[str, Any]) -> str:
        """What a FATAL report's document says went wrong (best effort: the state matters, not the text)."""
        document_id = report.get("reportDocumentId")
        if not document_id:
            return "Amazon gave no details"
        try:
            body, charset = self._fetch(str(document_id))
            data = json.loads(body.decode(charset or "utf-8"))
        except (RetriableError, FatalError, ValueError) as exc:
            return f"its error document could not be read ({exc})"
        return str(data.get("errorDetails") if isinstance(data, dict) else data)[:500]

    def _fetch(self, document_id: str) -> tuple[bytes, str | None]:
        meta: RawResponse = self.client.get_report_document(document_id)
        data = meta.data if isinstance(meta.data, dict) else {}
        url = data.get("url")
        if not url:
            raise RetriableError(f"amazon getReportDocument {document_id} answered without a url", channel="amazon")
        body, charset = self.client.download(str(url))
        algorithm = data.get("compressionAlgorithm")
        if algorithm == "GZIP":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise RetriableError(f"amazon report document {document_id} is not a whole gzip stream ({exc})",
                                     channel="amazon") from None
        elif algorithm:
            raise FatalError(f"amazon report document {document_id} uses compression {algorithm!r}, which orderhub "
                             f"does not read", channel="amazon")
        return body, charset


def fatal_wait(report: dict[str, Any], cooldown: timedelta) -> float:
    """Seconds left of the cool-down Amazon asks for after a FATAL report (0 when it is over)."""
    ended = report.get("processingEndTime") or report.get("createdTime")
    try:
        moment = datetime.fromisoformat(str(ended).replace("Z", "+00:00"))
    except ValueError:
        return cooldown.total_seconds()
    return max(0.0, (moment + cooldown - clock.now()).total_seconds())


def created_age(report: dict[str, Any]) -> float:
    """Seconds since a report was requested (0 when Amazon does not say)."""
    try:
        moment = datetime.fromisoformat(str(report.get("createdTime")).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (clock.now() - moment).total_seconds())
