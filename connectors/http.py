"""The one retry layer: HTTP errors mapped to the exception hierarchy, 429/5xx retried, rate limits honoured."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from orderhub.errors import AuthError, FatalError, RetriableError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a retriable failure (exponential backoff, capped)."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; the server's Retry-After wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    what: str = "request",
) -> T:
    """Call ``fn``, retrying on :class:`RetriableError` per ``policy``; everything else propagates.

    Raises:
        RetriableError: still failing after ``policy.max_attempts``; the caller's run fails and the next
            run resumes from the last landed cursor.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except RetriableError as exc:
            if attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, exc.retry_after)
            log.warning("%s failed (%s); retry %d/%d in %.2fs", what, exc, attempt, policy.max_attempts - 1, wait)
            sleep(wait)


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    One bucket per documented operation budget; ``set_rate`` adjusts it to what the server says.
    """

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """Adopt a rate the server announced (e.g. ``x-amzn-RateLimit-Limit``)."""
        if rate > 0:
            with self._lock:
                self.rate = rate

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are there; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                need = (tokens - self._tokens) / self.rate
            self._sleep(need)
            waited += need

    def after_call(self) -> None:
        """Count no refill for the time a call was in flight.

        The server measures its bucket when a request arrives, the client when it sends: a slow call
        (say one that first fetched an access token) would otherwise let the client believe in refill
        the server has not granted yet. Discarding the in-flight time keeps the client behind the server.
        """
        with self._lock:
            self._last = self._clock()

    def snapshot(self) -> dict[str, float]:
        """The bucket's level now, in wall-clock terms (for another process to resume from)."""
        with self._lock:
            now = self._clock()
            tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            return {"tokens": tokens, "rate": self.rate, "at": time.time()}

    def restore(self, saved: dict[str, float]) -> None:
        """Resume from a :meth:`snapshot`, refilled for the time that passed since."""
        try:
            elapsed = max(0.0, time.time() - float(saved["at"]))
            rate = float(saved.get("rate") or self.rate)
            tokens = float(saved["tokens"])
        except (KeyError, TypeError, ValueError):
            return
        with self._lock:
            self.rate = rate if rate > 0 else self.rate
            self._tokens = min(self.burst, tokens + elapsed * self.rate)
            self._last = self._clock()


class SharedBuckets:
    """Token buckets shared by every client of one rate-limit scope, and carried from run to run.

    A channel's limits belong to the account, not to a client object: two stores of one Amazon seller
    in one region draw on the same budgets, and the next scheduled run must not assume a full burst that
    the last run spent. Buckets are therefore kept per ``(scope, operation)`` for the whole process and,
    when :meth:`persist_to` names a folder (``orderhub`` sets ``$ORDERHUB_HOME/state/ratelimits``), saved
    after each acquisition and refilled on load by the time that passed.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._folder: Path | None = None

    def persist_to(self, folder: Path | None) -> None:
        """Save bucket levels under ``folder`` (None: keep them in this process only)."""
        self._folder = folder

    def _file(self, scope: str) -> Path | None:
        if self._folder is None:
            return None
        return self._folder / (hashlib.sha256(scope.encode()).hexdigest()[:20] + ".json")

    def bucket(self, scope: str, operation: str, rate: float, burst: float, *,
               sleep: Callable[[float], None] = time.sleep) -> TokenBucket:
        """The bucket of ``operation`` in ``scope``, created with the documented ``rate``/``burst`` if new."""
        with self._lock:
            found = self._buckets.get((scope, operation))
            if found is None:
                found = self._buckets[(scope, operation)] = TokenBucket(rate, burst, sleep=sleep)
                path = self._file(scope)
                if path is not None and path.exists():
                    try:
                        saved = json.loads(path.read_text()).get(operation)
                    except (OSError, ValueError):
                        saved = None
                    if isinstance(saved, dict):
                        found.restore(saved)
            return found

    def save(self, scope: str) -> None:
        """Write the levels of ``scope``'s buckets (atomically; a lost write only costs a little patience)."""
        path = self._file(scope)
        if path is None:
            return
        with self._lock:
            levels = {op: b.snapshot() for (sc, op), b in self._buckets.items() if sc == scope}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(levels))
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("could not save rate-limit levels to %s: %s", path, exc)


SHARED_BUCKETS = SharedBuckets()


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def raise_for_status(resp: requests.Response, channel: str) -> None:
    """Map an HTTP status to the exception hierarchy (no-op for 2xx/3xx)."""
    status = resp.status_code
    if status < 400:
        return
    url = resp.url.split("?", 1)[0]
    body = resp.text[:500]
    if status == 429 or status >= 500:
        raise RetriableError(
            f"{channel} answered {status} for {url}; will retry",
            retry_after=_retry_after(resp.headers), channel=channel, status=status, url=url, body=body,
        )
    if status in (401, 403):
        raise AuthError(
            f"{channel} refused the credentials ({status}) for {url}: check the store's keys/tokens in orderhub.toml",
            channel=channel, status=status, url=url, body=body,
        )
    raise FatalError(f"{channel} answered {status} for {url}: {body[:200]}", channel=channel, status=status,
                     url=url, body=body)


def parse_json(resp: requests.Response, channel: str) -> Any:
    """The response's JSON; a truncated or garbled body is retriable (it was not landed)."""
    try:
        return json.loads(resp.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RetriableError(
            f"{channel} sent a body that is not valid JSON ({len(resp.content)} bytes, truncated?); will retry",
            channel=channel, status=resp.status_code, url=resp.url.split("?", 1)[0],
        ) from None


class HttpClient:
    """requests.Session with timeouts, the error mapping above, one rate limiter and retries in one place."""

    def __init__(
        self,
        channel: str,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy = RetryPolicy(),
        limiter: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self.policy = policy
        self.limiter = limiter
        self._sleep = sleep
        self.session = session or requests.Session()

    def send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt: rate limiter, request with timeout, status mapped to the error hierarchy."""
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise RetriableError(
                f"{self.channel}: {type(exc).__name__} calling {url.split('?', 1)[0]}; will retry",
                channel=self.channel, url=url.split("?", 1)[0],
            ) from None
        raise_for_status(resp, self.channel)
        return resp

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request, retrying 429/5xx/timeouts; returns a 2xx/3xx response or raises."""
        return call_with_retry(
            lambda: self.send_once(method, url, **kwargs), policy=self.policy, sleep=self._sleep,
            what=f"{self.channel} {method}",
        )

    def get_json(self, url: str, **kwargs: Any) -> tuple[requests.Response, Any]:
        """GET and parse JSON; a truncated body is retried like a 5xx (one retry loop, not two)."""

        def once() -> tuple[requests.Response, Any]:
            resp = self.send_once("GET", url, **kwargs)
            return resp, parse_json(resp, self.channel)

        return call_with_retry(once, policy=self.policy, sleep=self._sleep, what=f"{self.channel} GET")
