"""Backfills as Shopify bulk operations: start one, poll it, download its JSON Lines, check it whole.

Paging a year of a busy shop costs thousands of queries against the cost bucket; a bulk operation runs the
same query on Shopify's side without a cost limit and hands back one JSONL file
(https://shopify.dev/docs/api/usage/bulk-operations/queries). One bulk query runs per shop and app at a
time. The operation's id sits in the stream's cursor while it runs, so a run that stops resumes polling
it instead of starting over.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.base import Page
from connectors.landing import Part
from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from orderhub.errors import FatalError, RetriableError

log = logging.getLogger(__name__)

KIND_BULK = "shopify.bulk.orders"
TERMINAL = {"COMPLETED", "CANCELED", "FAILED", "EXPIRED"}
RESTARTABLE = {"FAILED", "EXPIRED", "CANCELED"}
_IN_PROGRESS = re.compile(r"already in progress", re.IGNORECASE)


def inspect_jsonl(body: bytes) -> int:
    """The number of root objects (orders) of a bulk result, after checking every line parses.

    Raises:
        RetriableError: a line is not JSON (a cut-off download); fetching again may help.
    """
    roots = 0
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise RetriableError(f"shopify bulk result line {number} is not JSON (cut off?); will download it again",
                                 channel="shopify") from None
        if isinstance(obj, dict) and "__parentId" not in obj:
            roots += 1
    return roots


@dataclass
class BulkBackfill:
    """One shop's bulk backfills.

    Attributes:
        poll_initial, poll_factor, poll_max: the polling schedule (seconds; backoff).
        timeout: seconds of polling before a run stops (the operation's id stays in the cursor).
        download_attempts: downloads of a result before giving up for this run.
    """

    client: ShopifyClient
    poll_initial: float = 2.0
    poll_factor: float = 1.5
    poll_max: float = 30.0
    timeout: float = 3600.0
    download_attempts: int = 3
    sleep: Callable[[float], None] = field(default=time.sleep)

    @property
    def key(self) -> str:
        """The store's key."""
        return self.client.store.key

    def pages(self, state: dict[str, Any], since: datetime, until: datetime, search: str) -> Iterator[Page]:
        """The pages of a backfill of ``[since, until)``: the cursor naming the operation, then its result."""
        pending = state.get("bulk") if isinstance(state.get("bulk"), dict) else None
        operation: dict[str, Any] | None = None
        if pending and pending.get("since") == since.isoformat():
            until = min(datetime.fromisoformat(pending["until"]), until)
            search = f"updated_at:>='{_z(since)}' AND updated_at:<'{_z(until)}'"
            operation = self._resume(str(pending["id"]))
        document = queries.bulk_orders(search)
        restarts = 0
        while True:
            if operation is None:
                operation = {"id": self._start(document), "status": "CREATED"}
                yield Page([], {"since": since.isoformat(),
                                "bulk": {"id": operation["id"], "since": since.isoformat(), "until": until.isoformat()}})
            if operation["status"] not in TERMINAL:
                operation = self.wait(str(operation["id"]))
            status = operation["status"]
            if status == "COMPLETED":
                try:
                    parts = [self.result(operation, since, until, document)] if operation.get("url") else []
                except FatalError as exc:  # the file's URL expired (7 days): build it again
                    if restarts >= 1:
                        raise
                    restarts += 1
                    log.warning("shopify %s: bulk result of %s unavailable (%s); starting it again", self.key,
                                operation["id"], exc)
                    operation = None
                    continue
                yield Page(parts, {"since": until.isoformat()})
                return
            if status in RESTARTABLE and restarts < 1:
                restarts += 1
                log.warning("shopify %s: bulk operation %s ended %s (%s); starting it again", self.key,
                            operation["id"], status, operation.get("errorCode"))
                operation = None
                continue
            raise RetriableError(
                f"shopify bulk operation {operation['id']} of store {self.key!r} for {since.isoformat()} to "
                f"{until.isoformat()} ended {status} ({operation.get('errorCode') or 'no error code'}) twice; nothing "
                f"after {since.isoformat()} was marked done and the next run starts it again", channel="shopify")

    def _start(self, document: str) -> str:
        payload = self.client.run_bulk(document)
        errors = payload.get("userErrors") or []
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors)
            if _IN_PROGRESS.search(message):
                current = (self.client.query(queries.CURRENT_BULK, None, "CurrentBulk").get("currentBulkOperation")
                           or {})
                if current.get("query", "").strip() == document.strip() and current.get("status") not in TERMINAL:
                    log.info("shopify %s: adopting bulk operation %s, already building this window", self.key,
                             current.get("id"))
                    return str(current["id"])
                raise RetriableError(f"shopify store {self.key!r}: another bulk query is running on the shop "
                                     f"({message}); Shopify runs one at a time, the next run tries again",
                                     channel="shopify", retry_after=60.0)
            raise FatalError(f"shopify refused the bulk query of store {self.key!r}: {message}", channel="shopify")
        operation = payload.get("bulkOperation") or {}
        if not operation.get("id"):
            raise FatalError(f"shopify started no bulk operation for store {self.key!r}: {payload}", channel="shopify")
        log.info("shopify %s: bulk operation %s started", self.key, operation["id"])
        return str(operation["id"])

    def _resume(self, operation_id: str) -> dict[str, Any] | None:
        try:
            operation = self.client.bulk_status(operation_id)
        except FatalError as exc:
            log.warning("shopify %s: bulk operation %s of the last run is gone (%s); starting anew", self.key,
                        operation_id, exc)
            return None
        if operation.get("status") in RESTARTABLE:
            log.info("shopify %s: bulk operation %s of the last run ended %s; starting anew", self.key, operation_id,
                     operation.get("status"))
            return None
        return operation

    def wait(self, operation_id: str) -> dict[str, Any]:
        """Poll until the operation ends.

        Raises:
            RetriableError: still running after ``timeout`` seconds; the next run resumes polling it.
        """
        waited, delay = 0.0, self.poll_initial
        while True:
            operation = self.client.bulk_status(operation_id)
            if operation.get("status") in TERMINAL:
                return operation
            if waited >= self.timeout:
                raise RetriableError(
                    f"shopify bulk operation {operation_id} of store {self.key!r} is still {operation.get('status')} "
                    f"after {waited:.0f} s ({operation.get('objectCount') or 0} objects so far); the next run resumes "
                    f"polling it", channel="shopify", retry_after=self.poll_max)
            self.sleep(delay)
            waited += delay
            delay = min(delay * self.poll_factor, self.poll_max)

    def result(self, operation: dict[str, Any], since: datetime, until: datetime, document: str) -> Part:
        """Download a COMPLETED operation's file at once and check it whole (every line JSON, roots counted).

        Raises:
            RetriableError: still unreadable after ``download_attempts``.
            FatalError: the URL no longer serves the file.
        """
        expected = operation.get("rootObjectCount")
        last: Exception | None = None
        for attempt in range(1, self.download_attempts + 1):
            try:
                body = self.client.download(str(operation["url"]))
                roots = inspect_jsonl(body)
                if expected is not None and str(expected).isdigit() and roots != int(expected):
                    raise RetriableError(f"shopify bulk result has {roots} orders, the operation reported {expected}",
                                         channel="shopify")
            except RetriableError as exc:
                last = exc
                log.warning("shopify %s: bulk result attempt %d/%d failed: %s", self.key, attempt,
                            self.download_attempts, exc)
                continue
            request = {"bulkOperationId": operation["id"], "query": document, "since": since.isoformat(),
                       "until": until.isoformat(), "objectCount": operation.get("objectCount"),
                       "rootObjectCount": expected}
            log.info("shopify %s: bulk result of %s holds %d orders", self.key, operation["id"], roots)
            return Part(KIND_BULK, body, roots, request)
        raise RetriableError(f"shopify bulk result of {operation['id']} stayed unreadable ({last}); the next run "
                             f"downloads it again", channel="shopify")


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
