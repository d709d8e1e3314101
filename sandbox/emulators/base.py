"""What every channel emulator shares: a real HTTP server on loopback, routing, rate limits and faults."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orderhub import clock

log = logging.getLogger(__name__)


@dataclass
class Request:
    """An incoming request, parsed."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        """All values of a query parameter, comma lists split (SP-API style)."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(v for v in value.split(",") if v)
        return out

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What to send back."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON response (Decimals and datetimes as strings)."""
        body = json.dumps(data, default=str, ensure_ascii=False).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


Handler = Callable[[Request, "re.Match[str]"], Response]


@dataclass
class Fault:
    """One fault to inject: ``kind`` on the next ``times`` requests whose path matches ``path``.

    Kinds every emulator understands: ``429`` (with Retry-After), ``429_bare`` (no rate header),
    ``500``, ``503``, ``timeout`` (the server stalls ``stall`` seconds before answering),
    ``truncate`` (the body is cut in half), ``expired_token``, ``reset`` (connection closed with no
    answer). Channel emulators add their own (``duplicate_page``, ``expired_page_token``, ``throttled``...).
    """

    kind: str
    times: int = 1
    path: str = ".*"
    stall: float = 5.0
    after: int = 0  # let this many matching requests pass first (e.g. fail the third page)


class FaultPlan:
    """Thread-safe queue of faults, consumed by matching requests (tests and ``orderhub sandbox fault``)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str]] = []  # (kind, path) actually served

    def add(self, kind: str, *, times: int = 1, path: str = ".*", stall: float = 5.0, after: int = 0) -> None:
        """Queue a fault."""
        with self._lock:
            self._faults.append(Fault(kind, times, path, stall, after))

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def take(self, path: str, kinds: set[str] | None = None) -> Fault | None:
        """The next pending fault for ``path`` (optionally only of ``kinds``), consuming one use."""
        with self._lock:
            for fault in self._faults:
                if (kinds is None or fault.kind in kinds) and re.search(fault.path, path):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    self.injected.append((fault.kind, path))
                    return fault
        return None


class ServerBucket:
    """Server-side token bucket that enforces a published rate, sped up by ``speed`` for tests."""

    def __init__(self, rate: float, burst: float, speed: float = 1.0) -> None:
        self.rate = rate * speed
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def try_take(self, tokens: float = 1.0) -> bool:
        """Take tokens if there are enough; False means answer 429."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    def available(self) -> float:
        """Tokens available now."""
        with self._lock:
            now = time.monotonic()
            return min(self.burst, self._tokens + (now - self._last) * self.rate)


class Emulator:
    """Base of a channel emulator: register routes, then serve them with :class:`EmulatorServer`.

    Attributes:
        faults: the fault plan; tests add faults here.
        speed: clock speed-up for rate limits (1.0 = the real budgets).
        requests: count of requests served, by route name.
    """

    name = "emulator"

    def __init__(self, *, speed: float = 1.0, now: Callable[[], datetime] = clock.now) -> None:
        self.faults = FaultPlan()
        self.speed = speed
        self.now = now
        self.requests: dict[str, int] = {}
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._lock = threading.Lock()

    def route(self, method: str, pattern: str, handler: Handler, name: str | None = None) -> None:
        """Register ``handler`` for ``method`` and a full-match path regex."""
        self._routes.append((method, re.compile(pattern), name or handler.__name__, handler))

    def dispatch(self, req: Request) -> Response:
        """Route a request, applying the generic faults first."""
        fault = self.faults.take(req.path, {"429", "429_bare", "500", "503", "timeout", "truncate", "reset"})
        if fault is not None:
            if fault.kind == "timeout":
                time.sleep(fault.stall)
            elif fault.kind == "429":
                return Response.json({"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota"}]},
                                     429, {"Retry-After": "1"})
            elif fault.kind == "429_bare":
                return Response.json({"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota"}]}, 429)
            elif fault.kind in ("500", "503"):
                return Response.json({"errors": [{"code": "InternalFailure", "message": "We encountered an internal error"}]},
                                     int(fault.kind))
            elif fault.kind == "reset":
                raise ConnectionResetError("fault: reset")
        for method, pattern, name, handler in self._routes:
            if method != req.method:
                continue
            match = pattern.fullmatch(req.path)
            if match:
                with self._lock:
                    self.requests[name] = self.requests.get(name, 0) + 1
                resp = handler(req, match)
                if fault is not None and fault.kind == "truncate":
                    resp.body = resp.body[: len(resp.body) // 2]
                return resp
        return Response.json({"errors": [{"code": "NotFound", "message": f"no route {req.method} {req.path}"}]}, 404)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this each answer waits ~40 ms

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            resp = self.server.emulator.dispatch(req)
        except ConnectionResetError:
            self.close_connection = True
            return
        except Exception as exc:
            log.exception("emulator error")
            resp = Response.json({"errors": [{"code": "InternalFailure", "message": repr(exc)}]}, 500)
        self.send_response(resp.status)
        headers = {"Date": self.server.emulator.now().strftime("%a, %d %b %Y %H:%M:%S GMT"), **resp.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator


class EmulatorServer:
    """Serve an emulator on ``127.0.0.1`` (a free port unless given) in a background thread.

    Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(self, emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._server = _Server((host, port), _Handler)
        self._server.emulator = emulator
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{emulator.name}-server", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
