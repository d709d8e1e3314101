"""The one retry layer, over real HTTP against an emulator server with injected faults."""

from __future__ import annotations

import pytest

from connectors.http import HttpClient, RetryPolicy, TokenBucket
from orderhub.errors import AuthError, FatalError, RetriableError
from sandbox.emulators.base import Emulator, EmulatorServer, Response


class Echo(Emulator):
    name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.route("GET", r"/ok", lambda req, m: Response.json({"ok": True, "n": req.arg("n")}), "ok")
        self.route("GET", r"/denied", lambda req, m: Response.json({"errors": ["no"]}, 403), "denied")
        self.route("GET", r"/missing", lambda req, m: Response.json({"errors": ["?"]}, 404), "missing")


@pytest.fixture
def server():
    with EmulatorServer(Echo()) as srv:
        yield srv


def _client(**kw) -> HttpClient:
    return HttpClient("echo", timeout=0.5, policy=RetryPolicy(max_attempts=4, base_delay=0.01), **kw)


@pytest.mark.parametrize("fault", ["429", "429_bare", "500", "503", "timeout", "truncate", "reset"])
def test_transient_faults_are_retried(server, fault) -> None:
    server.emulator.faults.add(fault, times=2, stall=1.0)
    slept: list[float] = []
    _resp, data = _client(sleep=slept.append).get_json(f"{server.url}/ok", params={"n": "1"})
    assert data == {"ok": True, "n": "1"}
    assert len(slept) == 2
    if fault == "429":
        assert slept[0] == 1.0  # Retry-After honoured


def test_gives_up_with_a_retriable_error(server) -> None:
    server.emulator.faults.add("503", times=10)
    with pytest.raises(RetriableError) as err:
        _client(sleep=lambda s: None).get_json(f"{server.url}/ok")
    assert err.value.status == 503


def test_auth_and_other_4xx_are_fatal_without_retry(server) -> None:
    with pytest.raises(AuthError):
        _client().get_json(f"{server.url}/denied")
    with pytest.raises(FatalError):
        _client().get_json(f"{server.url}/missing")
    assert server.emulator.requests == {"denied": 1, "missing": 1}


def test_token_bucket_waits_for_its_rate() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    bucket = TokenBucket(rate=0.5, burst=2, clock=lambda: now[0], sleep=sleep)
    assert bucket.acquire() == 0 and bucket.acquire() == 0
    assert bucket.acquire() == pytest.approx(2.0)  # the third call waits one token at 0.5/s
    bucket.set_rate(10)
    assert bucket.acquire() == pytest.approx(0.1)
