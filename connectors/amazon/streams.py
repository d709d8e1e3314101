"""Amazon order streams: Orders v2026-01-01 ``searchOrders`` (default) and the deprecated v0 ``getOrders``."""

from __future__ import annotations

import hashlib
import json
import logging
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar

from connectors.amazon.client import AmazonClient, RawResponse
from connectors.amazon.config import AmazonStore
from connectors.amazon.reports import (
    REPORT_OVERLAP,
    REPORT_WINDOW,
    TERMINAL,
    ReportRunner,
    created_age,
    fatal_wait,
)
from connectors.base import Page, Stream
from connectors.landing import Part
from orderhub import clock
from orderhub.errors import FatalError, RetriableError

log = logging.getLogger(__name__)

KIND_SEARCH_ORDERS = "amazon.orders.v2026.searchOrders"
KIND_GET_ORDER = "amazon.orders.v2026.getOrder"
KIND_V0_ORDERS = "amazon.orders.v0.getOrders"
KIND_V0_ORDER = "amazon.orders.v0.getOrder"
KIND_V0_ITEMS = "amazon.orders.v0.getOrderItems"

# Datasets searchOrders returns besides the always-present orderItems (enum of `includedData` in
# orders_2026-01-01.json; there is no "ITEMS" value). PROCEEDS carries the money.
INCLUDED_DATA = ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES"]
PAGE_SIZE = 100  # maxResultsPerPage / MaxResultsPerPage: "between 1 and 100" in both models


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _record_key(record: Any) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


@dataclass
class NextTokenPaginator:
    """SP-API paging: the response's next token goes back in ``param`` with otherwise identical parameters.

    A token that keeps coming back means the server is looping: after ``max_repeats`` the run stops with
    a retriable error instead of spinning (its landed pages stay; the next run re-fetches the window).
    """

    param: str
    read: Callable[[Any], str | None]
    max_repeats: int = 3
    token: str | None = None
    _asked: Counter[str] = field(default_factory=Counter)

    def init_request(self, params: dict[str, Any]) -> dict[str, Any]:
        """The first request of a window."""
        self.token = None
        self._asked.clear()
        return dict(params)

    def update_state(self, data: Any) -> None:
        """Read the next token from a response."""
        self.token = self.read(data) or None
        if self.token is not None:
            self._asked[self.token] += 1
            if self._asked[self.token] > self.max_repeats:
                raise RetriableError(f"amazon served the same page token {self.max_repeats} times; stopping this run",
                                     channel="amazon")

    def update_request(self, params: dict[str, Any]) -> dict[str, Any]:
        """The next request: the same parameters plus the token."""
        return {**params, self.param: self.token}

    @property
    def has_next(self) -> bool:
        """Whether another page follows."""
        return self.token is not None


class AmazonOrdersStream(Stream):
    """Orders updated in ``[since, until)``, fetched in date windows, each page landed verbatim.

    Cursor: ``{"since": ISO}``. Pages inside a window keep the window's start; the window's last page
    moves it to the window's end, so a crash re-fetches at most one window (overlap dedupes downstream).
    A page whose records were all landed already in this window (a duplicated page, or a window restarted
    after Amazon expired its page token) is not landed again.
    """

    channel = "amazon"
    name = "orders"
    # Amazon rejects a lastUpdatedBefore later than two minutes before the request ("must be ... at least
    # two minutes before the time of the request": `lastUpdatedBefore` in orders_2026-01-01.json and
    # `LastUpdatedBefore` in ordersV0.json, github.com/amzn/selling-partner-api-models).
    lag = timedelta(minutes=2)
    backfill_window: ClassVar[timedelta] = timedelta(days=30)  # backfills land in windows (STYLE.md 3)
    max_restarts: ClassVar[int] = 2  # re-asks of a window whose page token expired (they live 24 h)
    page_size: int = PAGE_SIZE
    kind: ClassVar[str]  # the Part kind of a page body
    paging_param: ClassVar[str]  # the request parameter that carries the next-page token
    page_size_param: ClassVar[str]

    def __init__(self, store: AmazonStore, *, start: datetime | None = None, client: AmazonClient | None = None) -> None:
        super().__init__(store, start=start)
        self.client = client or AmazonClient(store)

    # -- what a concrete API declares ------------------------------------------------------------
    @abstractmethod
    def params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """Request parameters of a window."""

    @abstractmethod
    def created_params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """Request parameters for orders created in a window (one page, for the history estimate)."""

    @abstractmethod
    def fetch(self, params: dict[str, Any]) -> RawResponse:
        """One page."""

    @staticmethod
    @abstractmethod
    def records(data: Any) -> list[Any]:
        """The order records of a page body."""

    @staticmethod
    @abstractmethod
    def next_token(data: Any) -> str | None:
        """The next page token of a page body."""

    def extra_parts(self, records: list[Any]) -> list[Part]:
        """Helper bodies landed with a page (v0: each order's items)."""
        return []

    # -- paging ----------------------------------------------------------------------------------
    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """Every window from the state's ``since`` to now minus the lag.

        A window longer than the store's ``reports_after_hours`` is read through order reports up to one
        hour before its end (:mod:`connectors.amazon.reports`), the rest through the Orders API.
        """
        since, until = self.window(state)
        since, until = _whole_second(since), _whole_second(until)
        if self._use_reports(state or {}, since, until):
            report_end = until - REPORT_OVERLAP
            yield from self._report_pages(state or {}, since, report_end)
            since = report_end
        yield from self._api_pages(since, until)

    def _use_reports(self, state: dict[str, Any], since: datetime, until: datetime) -> bool:
        """Whether ``[since, until)`` is read through order reports (``history`` in the store's config).

        ``auto``: a window longer than ``reports_after_hours`` whose estimated page count exceeds
        ``api_pages_max``. The estimate comes from one page of the orders *created* in the window's last
        day (each order appears once in a window however often it changed): a few orders a day over 90
        days is a few pages, within searchOrders' burst, and keeps the buyer data a report lacks; a full
        page means at least a page per day of the window.
        """
        mode = self.store.history
        long = until - since > timedelta(hours=max(self.store.reports_after_hours, 1.0))
        if mode == "orders_api" or not long:
            return False
        if mode == "reports" or isinstance(state.get("report"), dict):
            return True
        day_start = max(since, until - timedelta(days=1))
        data = self.fetch(self.created_params(day_start, until)).data
        per_day = self.page_size if self.next_token(data) else len(self.records(data))
        days = (until - since) / timedelta(days=1)
        pages = per_day * days / self.page_size
        log.info("amazon %s: about %.0f new orders a day over %.1f days = %.0f pages: reading history through %s",
                 self.store.key, per_day, days, pages,
                 "reports" if pages > self.store.api_pages_max else "the Orders API")
        return pages > self.store.api_pages_max

    def _api_pages(self, since: datetime, until: datetime) -> Iterator[Page]:
        start = since
        while True:
            end = min(start + self.backfill_window, until)
            last_window = end >= until
            landed = False
            if start < end:
                for parts, more in self._window_pages(start, end):
                    if more and parts:
                        landed = True
                        yield Page(parts, {"since": start.isoformat()})
                    elif not more and (parts or landed or last_window):
                        yield Page(parts, {"since": end.isoformat()})
            else:
                yield Page([], {"since": end.isoformat()})
            if last_window:
                return
            start = end

    # -- reports ---------------------------------------------------------------------------------
    @cached_property
    def reports(self) -> ReportRunner:
        """The store's report runner (its polling schedule can be tuned, e.g. by tests and benchmarks)."""
        return ReportRunner(self.client, self.client._sleep, poll_initial=self.store.report_poll_s)

    def _report_pages(self, state: dict[str, Any], since: datetime, end: datetime) -> Iterator[Page]:
        """Order reports of ``[since, end)`` in windows of at most 30 days, each landed whole before the cursor moves.

        The cursor holds the id of a requested report (``{"since", "report": {"id", "start", "end"}}``), so a
        run that stops while Amazon builds it resumes polling it instead of requesting it again.
        """
        pending = state.get("report") if isinstance(state.get("report"), dict) else None
        timeout = self.store.report_timeout_s
        cooldown = timedelta(minutes=self.store.report_cooldown_min)
        start = since
        while start < end:
            w_end = min(start + REPORT_WINDOW, end)
            report: dict[str, Any] | None = None
            if pending and pending.get("start") == start.isoformat():
                w_end = min(datetime.fromisoformat(pending["end"]), end)
                report = self._resume(str(pending["id"]), timeout, cooldown)
            pending = None
            if report is None:
                report_id = self.reports.create(start, w_end)
                yield Page([], {"since": start.isoformat(),
                                "report": {"id": report_id, "start": start.isoformat(), "end": w_end.isoformat()}})
                report = {"reportId": report_id, "processingStatus": "IN_QUEUE"}
            if report["processingStatus"] not in TERMINAL:
                report = self.reports.wait(str(report["reportId"]), timeout)
            status = report["processingStatus"]
            if status == "DONE":
                yield Page([self.reports.document(report, start, w_end)], {"since": w_end.isoformat()})
            elif status == "CANCELLED":
                # Amazon cancels a report that would be empty. Confirm with one cheap Orders API call, so a
                # cancellation for any other reason cannot pass for "no orders".
                if self.records(self.fetch({**self.params(start, w_end), self.page_size_param: 1}).data):
                    yield Page([], {"since": start.isoformat()})
                    raise RetriableError(
                        f"amazon report {report['reportId']} of store {self.store.key!r} was CANCELLED although the "
                        f"Orders API shows orders in {start.isoformat()} to {w_end.isoformat()}; nothing after "
                        f"{start.isoformat()} was marked done and the next run requests it again", channel="amazon")
                log.info("amazon %s: report %s CANCELLED: no orders in %s to %s", self.store.key,
                         report["reportId"], start.isoformat(), w_end.isoformat())
                yield Page([], {"since": w_end.isoformat()})
            else:  # FATAL
                details = self.reports.error_details(report)
                wait = fatal_wait(report, cooldown)
                raise RetriableError(
                    f"amazon report {report['reportId']} of store {self.store.key!r} for {start.isoformat()} to "
                    f"{w_end.isoformat()} ended FATAL: {details}. Amazon asks to wait before requesting it again: "
                    f"the next run after {wait / 60:.0f} minutes requests it anew; what was landed stays and nothing "
                    f"after {start.isoformat()} was marked done", channel="amazon", retry_after=wait)
            start = w_end

    def _resume(self, report_id: str, timeout: float, cooldown: timedelta) -> dict[str, Any] | None:
        """The state of a report a previous run requested, or None when a new one must be requested."""
        try:
            report = self.reports.status(report_id)
        except FatalError as exc:
            log.warning("amazon %s: report %s from the last run is gone (%s); requesting a new one",
                        self.store.key, report_id, exc)
            return None
        status = report["processingStatus"]
        if status == "FATAL":
            if fatal_wait(report, cooldown) > 0:
                return report  # still cooling down: raise again with the time left
            log.info("amazon %s: report %s ended FATAL and the cool-down is over; requesting it anew",
                     self.store.key, report_id)
            return None
        if status not in TERMINAL and created_age(report) > 4 * timeout:
            log.warning("amazon %s: report %s has been %s for %.0f minutes; requesting a new one", self.store.key,
                        report_id, status, created_age(report) / 60)
            return None
        return report

    def _window_pages(self, start: datetime, end: datetime) -> Iterator[tuple[list[Part], bool]]:
        params = self.params(start, end)
        paginator = NextTokenPaginator(self.paging_param, self.next_token)
        request = paginator.init_request(params)
        seen: set[str] = set()
        restarts = 0
        while True:
            try:
                response = self.fetch(request)
            except FatalError as exc:
                # Page tokens expire (24 h) or get refused: re-ask the window from its start; what was landed
                # already is recognised below and not landed twice.
                if paginator.token is None or exc.status != 400 or restarts >= self.max_restarts:
                    raise
                restarts += 1
                log.warning("amazon %s: page token refused (%s); re-reading the window from its start",
                            self.store.key, exc)
                request = paginator.init_request(params)
                continue
            records = self.records(response.data)
            keys = {_record_key(r) for r in records}
            paginator.update_state(response.data)
            parts: list[Part] = []
            if keys - seen:
                parts = [Part(self.kind, response.body, len(records), response.request), *self.extra_parts(records)]
            elif records:
                log.info("amazon %s: page already landed in this window; not landing it again", self.store.key)
            seen |= keys
            yield parts, paginator.has_next
            if not paginator.has_next:
                return
            request = paginator.update_request(params)

    @abstractmethod
    def single(self, order_id: str) -> list[Part]:
        """The parts that land one order fetched by id (getOrder)."""

    def refetch(self, order_ids: list[str], state: dict[str, Any] | None) -> Iterator[Page]:
        """Pages of the given orders, fetched one by one, with the cursor left as it is."""
        cursor = dict(state or {})
        for order_id in order_ids:
            yield Page(self.single(order_id), cursor)

    def check(self) -> None:
        """One small authenticated search of the last minute."""
        until = _whole_second(clock.now() - self.lag)
        self.fetch({**self.params(until - timedelta(minutes=1), until), self.page_size_param: 1})


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise FatalError(f"amazon answered a {what} body without its order list; nothing was landed", channel="amazon")
    return value


class OrdersStream(AmazonOrdersStream):
    """Orders API v2026-01-01 ``searchOrders`` by ``lastUpdatedAfter``/``lastUpdatedBefore``."""

    primary_key = "orderId"
    kind = KIND_SEARCH_ORDERS
    paging_param = "paginationToken"
    page_size_param = "maxResultsPerPage"

    def params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """searchOrders parameters of a window."""
        return {"lastUpdatedAfter": _iso(since), "lastUpdatedBefore": _iso(until),
                "marketplaceIds": self.store.marketplaces, "includedData": list(INCLUDED_DATA),
                "maxResultsPerPage": self.page_size}

    def created_params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """searchOrders by ``createdAfter``/``createdBefore``, one page, no extra datasets."""
        return {"createdAfter": _iso(since), "createdBefore": _iso(until), "marketplaceIds": self.store.marketplaces,
                "maxResultsPerPage": self.page_size}

    def fetch(self, params: dict[str, Any]) -> RawResponse:
        """One searchOrders page."""
        return self.client.search_orders(params)

    @staticmethod
    def records(data: Any) -> list[Any]:
        """``orders``."""
        return _list(data.get("orders") if isinstance(data, dict) else None, "searchOrders")

    @staticmethod
    def next_token(data: Any) -> str | None:
        """``pagination.nextToken``."""
        return (data.get("pagination") or {}).get("nextToken")

    def single(self, order_id: str) -> list[Part]:
        """getOrder with the same datasets as searchOrders."""
        response = self.client.get_order(order_id, {"includedData": list(INCLUDED_DATA)})
        return [Part(KIND_GET_ORDER, response.body, 1, response.request)]


class OrdersV0Stream(AmazonOrdersStream):
    """Orders API v0 ``getOrders`` by ``LastUpdatedAfter``, each page landed with ``getOrderItems`` of its orders.

    v0 is removed on 2027-03-27; use it only where v2026-01-01 is not yet available to the app.
    """

    primary_key = "AmazonOrderId"
    kind = KIND_V0_ORDERS
    paging_param = "NextToken"
    page_size_param = "MaxResultsPerPage"

    def params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """getOrders parameters of a window."""
        return {"LastUpdatedAfter": _iso(since), "LastUpdatedBefore": _iso(until),
                "MarketplaceIds": self.store.marketplaces, "MaxResultsPerPage": self.page_size}

    def created_params(self, since: datetime, until: datetime) -> dict[str, Any]:
        """getOrders by ``CreatedAfter``/``CreatedBefore``, one page."""
        return {"CreatedAfter": _iso(since), "CreatedBefore": _iso(until), "MarketplaceIds": self.store.marketplaces,
                "MaxResultsPerPage": self.page_size}

    def fetch(self, params: dict[str, Any]) -> RawResponse:
        """One getOrders page."""
        return self.client.get_orders_v0(params)

    @staticmethod
    def records(data: Any) -> list[Any]:
        """``payload.Orders``."""
        payload = data.get("payload") if isinstance(data, dict) else None
        return _list(payload.get("Orders") if isinstance(payload, dict) else None, "getOrders")

    @staticmethod
    def next_token(data: Any) -> str | None:
        """``payload.NextToken``."""
        return (data.get("payload") or {}).get("NextToken")

    def single(self, order_id: str) -> list[Part]:
        """v0 getOrder and the order's items."""
        response = self.client.get_order_v0(order_id)
        order = (response.data or {}).get("payload") if isinstance(response.data, dict) else None
        return [Part(KIND_V0_ORDER, response.body, 1, response.request), *self.extra_parts([order or {}])]

    def extra_parts(self, records: list[Any]) -> list[Part]:
        """Every item page of every order of the page (an order without an id cannot be asked about)."""
        parts: list[Part] = []
        for record in records:
            order_id = record.get("AmazonOrderId") if isinstance(record, dict) else None
            if not order_id:
                continue
            params: dict[str, Any] = {}
            while True:
                response = self.client.get_order_items_v0(str(order_id), params)
                parts.append(Part(KIND_V0_ITEMS, response.body, 0, response.request))
                token = ((response.data or {}).get("payload") or {}).get("NextToken")
                if not token:
                    break
                params = {"NextToken": token}
        return parts
