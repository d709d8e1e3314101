"""The Scrapy spider: log in, walk the order list newest first down to the cursor, extract each detail page.

It runs in a child process (connectors/storefront/runner.py) with a spec: the site URL, the
profile, the cursor (``last_updated`` UTC ISO plus the ids already taken at that instant) and the
time zone the site writes dates in. Every order becomes one item of raw extracted strings; the
typing happens in pipelines/storefront.py. A required selector that matches nothing closes the
crawl with the selectors named in ``missing`` (a layout change is never a silent empty sync).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import FormRequest, Request, Response

from connectors.storefront.profile import Profile

MAX_RELOGINS = 20  # a site that logs us out more often than this is refusing us, not expiring sessions


def parse_site_date(raw: str, formats: list[str], zone: ZoneInfo) -> datetime | None:
    """A site date (naive, in the shop's zone) as aware UTC; None when no format matches."""
    for fmt in formats:
        try:
            return datetime.strptime(raw.strip(), fmt).replace(tzinfo=zone).astimezone(UTC)
        except ValueError:
            continue
    return None


def _first(selection: Any, selector: str) -> str | None:
    value = selection.css(selector).get()
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


class StorefrontSpider(scrapy.Spider):
    """Crawls one storefront admin site by its profile (spec keys: url, username, password, profile, ...)."""

    name = "storefront"

    def __init__(self, spec: dict[str, Any], password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.password = password
        self.profile = Profile.model_validate(spec["profile"])
        self.base = spec["url"].rstrip("/") + "/"
        self.zone = ZoneInfo(spec["timezone"])
        cursor = spec.get("cursor") or {}
        self.since = datetime.fromisoformat(cursor["last_updated"]) if cursor.get("last_updated") else None
        self.ids_at = set(cursor.get("ids_at") or [])
        self.missing: list[str] = []
        self.failures: list[str] = []
        self.auth_error: str | None = None
        self.relogins = 0
        # Every request is dont_filter and this set dedupes instead: Scrapy's dupefilter would drop the
        # redirect of a second expired page to the same login URL, silently losing that page.
        self.seen: set[str] = set()

    # -- login ------------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Request]:
        """The login page first."""
        for request in self.start_requests():
            yield request

    def start_requests(self) -> Iterator[Request]:
        """The login page first (Scrapy before 2.13)."""
        yield Request(urljoin(self.base, self.profile.login.path.lstrip("/")), callback=self.login,
                      errback=self.failed, dont_filter=True)

    def _missing(self, where: str, selector: str, url: str) -> None:
        self.missing.append(f"{where} {selector!r} (on {url})")
        raise CloseSpider("layout_changed")

    def _login_request(self, response: Response, after: Request | None) -> FormRequest:
        login = self.profile.login
        if not response.css(login.form):
            self._missing("login.form", login.form, response.url)
        if not response.css(f"{login.form} input[name='{login.csrf_field}']"):
            self._missing("login.csrf_field", f"{login.form} input[name='{login.csrf_field}']", response.url)
        return FormRequest.from_response(  # carries the hidden CSRF input along
            response, formcss=login.form, dont_filter=True, callback=self.logged_in, errback=self.failed,
            formdata={login.username_field: self.spec["username"], login.password_field: self.password},
            cb_kwargs={"after": after},
        )

    def login(self, response: Response) -> Iterator[Request]:
        """Submit the login form."""
        yield self._login_request(response, None)

    def _on_login_page(self, response: Response) -> bool:
        return urlsplit(response.url).path.rstrip("/") == self.profile.login.path.rstrip("/")

    def logged_in(self, response: Response, after: Request | None) -> Iterator[Request]:
        """After the login: go on where the crawl was, or start at the list's first page."""
        error = self.profile.login.error
        if (error and response.css(error)) or self._on_login_page(response):
            self.auth_error = f"the site refused the login of {self.spec['username']!r} ({response.url})"
            raise CloseSpider("auth")
        if after is not None:
            yield after.replace(dont_filter=True)
        else:
            yield Request(urljoin(self.base, self.profile.list.path.lstrip("/")), callback=self.parse_list,
                          errback=self.failed, dont_filter=True)

    def _relogin(self, response: Response) -> Iterator[Request]:
        """The session expired mid-crawl: log in again on this login page, then repeat the request."""
        self.relogins += 1
        if self.relogins > MAX_RELOGINS:
            self.auth_error = f"the site logged us out {self.relogins} times in one crawl"
            raise CloseSpider("auth")
        original = response.meta.get("redirect_urls", [response.url])[0]
        self.logger.info("session expired at %s; logging in again", original)
        again = response.request.replace(url=original, dont_filter=True)
        again.meta.pop("redirect_urls", None)
        again.meta.pop("redirect_times", None)
        again.meta.pop("redirect_ttl", None)
        again.meta.pop("redirect_reasons", None)
        yield self._login_request(response, again)

    # -- list and detail --------------------------------------------------------------------------
    def parse_list(self, response: Response) -> Iterator[Request]:
        """Follow every row newer than the cursor, then the next page unless the cursor was reached."""
        if self._on_login_page(response):
            yield from self._relogin(response)
            return
        lst = self.profile.list
        rows = response.css(lst.row)
        if not rows:
            if response.css(lst.empty):
                return
            self.missing.append(f"list.row {lst.row!r} and list.empty {lst.empty!r} (on {response.url})")
            raise CloseSpider("layout_changed")
        reached = False
        for row in rows:
            link, order_id, updated = _first(row, lst.link), _first(row, lst.order_id), _first(row, lst.updated)
            for where, selector, value in (("list.link", lst.link, link), ("list.order_id", lst.order_id, order_id),
                                           ("list.updated", lst.updated, updated)):
                if value is None:
                    self._missing(where, selector, response.url)
            when = parse_site_date(str(updated), self.profile.format.dates, self.zone)
            if when is None:
                self.missing.append(f"list.updated value {updated!r} matches none of format.dates "
                                    f"{self.profile.format.dates} (on {response.url})")
                raise CloseSpider("layout_changed")
            if self.since is not None and (when < self.since or (when == self.since and order_id in self.ids_at)):
                reached = True  # newest first: everything below is older
                continue
            url = response.urljoin(str(link))
            if url in self.seen:
                continue  # listed twice: the list shifted while we paged (an order changed mid-crawl)
            self.seen.add(url)
            yield Request(url, callback=self.parse_detail, errback=self.failed, dont_filter=True,
                          cb_kwargs={"listed": {"order_id": order_id, "updated": updated,
                                                "updated_utc": when.isoformat()}})
        next_href = _first(response, lst.next)
        if next_href and not reached and response.urljoin(next_href) not in self.seen:
            self.seen.add(response.urljoin(next_href))
            yield Request(response.urljoin(next_href), callback=self.parse_list, errback=self.failed, dont_filter=True)

    def parse_detail(self, response: Response, listed: dict[str, str]) -> Iterator[Any]:
        """One item: the raw strings of every profile field and line, and the page's sha256."""
        if self._on_login_page(response):
            yield from self._relogin(response)
            return
        detail = self.profile.detail
        fields = {name: _first(response, selector) for name, selector in detail.fields.items()}
        for name in detail.required:
            if fields.get(name) is None:
                self._missing(f"detail.fields.{name}", detail.fields.get(name, "<not in profile>"), response.url)
        rows = response.css(detail.lines.row)
        if not rows and (detail.lines.container is None or not response.css(detail.lines.container)):
            self._missing("detail.lines.row", detail.lines.row, response.url)
        lines = []
        for row in rows:
            line = {name: _first(row, selector) for name, selector in detail.lines.fields.items()}
            for name in detail.lines.required:
                if line.get(name) is None:
                    self._missing(f"detail.lines.fields.{name}", detail.lines.fields.get(name, "<not in profile>"),
                                  response.url)
            lines.append(line)
        yield {"order_id": listed["order_id"], "url": response.url, "list_updated": listed["updated"],
               "list_updated_utc": listed["updated_utc"], "fields": fields, "lines": lines,
               "html_sha256": hashlib.sha256(response.body).hexdigest()}

    def failed(self, failure: Any) -> None:
        """A request that failed after every retry: the crawl is incomplete, so nothing may land."""
        request = getattr(failure, "request", None)
        self.failures.append(f"{getattr(request, 'url', '?')}: {failure.getErrorMessage()}")
        raise CloseSpider("request_failed")
