"""Run one crawl in a fresh child process (``python -m connectors.storefront.runner SPEC``).

Twisted's reactor cannot be restarted in a process, and a Prefect worker runs many syncs in one
process, so every crawl gets its own interpreter: the parent writes a spec (never the password,
which goes through the child's environment), the child crawls and writes the items as JSON Lines
plus a result file, and the parent turns the result into data or a typed error. A crawl that
failed in any way lands nothing: a partial list would move the cursor past orders never read.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderhub.errors import AuthError, FatalError, RetriableError

log = logging.getLogger(__name__)

CHANNEL = "storefront"
PASSWORD_ENV = "ORDERHUB_STOREFRONT_PASSWORD"  # noqa: S105 - the variable name, not a password
CHILD_TIMEOUT = 3600.0  # a crawl that runs longer than an hour is stuck, not slow


class LayoutChangedError(FatalError):
    """Selectors of the profile matched nothing: the site's layout changed; update the profile.

    Attributes:
        missing: every selector that matched nothing, with the page it was tried on.
    """

    def __init__(self, message: str, *, missing: list[str], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.missing = missing


@dataclass
class CrawlResult:
    """What one crawl produced: the JSON Lines body (one order per line) and Scrapy's figures."""

    body: bytes
    items: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def crawl(spec: dict[str, Any], password: str, *, timeout: float = CHILD_TIMEOUT) -> CrawlResult:
    """Crawl in a child process; the items, or the typed error of a failed crawl.

    Raises:
        LayoutChangedError: required selectors matched nothing.
        AuthError: the site refused the login.
        RetriableError: requests failed after every retry (5xx, timeouts).
        FatalError: the child process failed.
    """
    url = spec["url"]
    with tempfile.TemporaryDirectory(prefix="storefront-crawl-") as tmp:
        spec = {**spec, "out": str(Path(tmp) / "items.jsonl"), "result": str(Path(tmp) / "result.json")}
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, PASSWORD_ENV: password,
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-m", "connectors.storefront.runner", str(spec_path)],
                                  env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise RetriableError(f"storefront crawl of {url} ran longer than {timeout:.0f}s and was stopped; "
                                 f"nothing landed", channel=CHANNEL, url=url) from None
        seconds = time.monotonic() - started
        log.debug("storefront crawl of %s, child output:\n%s", url, proc.stderr[-20000:])
        result_path = Path(spec["result"])
        if proc.returncode != 0 or not result_path.exists():
            raise FatalError(f"storefront crawl of {url} failed in its child process (exit {proc.returncode}); "
                             f"nothing landed. Its last output:\n{proc.stderr[-2000:]}", channel=CHANNEL, url=url)
        result = json.loads(result_path.read_text(encoding="utf-8"))
        if result["missing"]:
            raise LayoutChangedError(
                f"storefront site {url} no longer matches its profile {spec['profile'].get('name')!r}: these selectors "
                f"matched nothing: {'; '.join(result['missing'])}. The layout probably changed: update the profile "
                f"(connectors/storefront/README.md); nothing landed and the cursor did not move",
                missing=result["missing"], channel=CHANNEL, url=url)
        if result["auth_error"]:
            raise AuthError(f"storefront {url}: {result['auth_error']}; check username and password",
                            channel=CHANNEL, url=url)
        if result["failures"]:
            raise RetriableError(f"storefront crawl of {url}: {len(result['failures'])} request(s) failed after every "
                                 f"retry ({result['failures'][0]}); nothing landed, the next run tries again",
                                 channel=CHANNEL, url=url)
        out = Path(spec["out"])
        body = out.read_bytes() if out.exists() else b""
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
        return CrawlResult(body, items, result["stats"], seconds)


def settings_for(spec: dict[str, Any]) -> dict[str, Any]:
    """Scrapy settings: AutoThrottle and retries on, items to the spec's JSON Lines file."""
    return {
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": spec.get("start_delay", 0.25),
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": spec.get("target_concurrency", 4.0),
        "DOWNLOAD_DELAY": 0.0,  # AutoThrottle's floor: the site's latency sets the pace
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": spec.get("retries", 5),
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "DOWNLOAD_TIMEOUT": spec.get("download_timeout", 30.0),
        "COOKIES_ENABLED": True,
        "ROBOTSTXT_OBEY": False,  # our own admin pages, logged in as ourselves
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy 2.19 opens a control port otherwise; nobody drives this child
        "LOG_LEVEL": "INFO",
        "USER_AGENT": "orderhub-storefront/1.0",
        "FEEDS": {Path(spec["out"]).as_uri(): {"format": "jsonlines", "encoding": "utf8", "overwrite": True}},
    }


def _child(spec_path: str) -> None:
    """The child: one crawl, then the result file."""
    from scrapy.crawler import CrawlerProcess

    from connectors.storefront.spider import StorefrontSpider

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    process = CrawlerProcess(settings_for(spec))
    crawler = process.create_crawler(StorefrontSpider)
    process.crawl(crawler, spec=spec, password=os.environ.get(PASSWORD_ENV, ""))
    process.start()
    spider = crawler.spider
    stats = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in (crawler.stats.get_stats() or {}).items()}
    result = {"missing": spider.missing, "failures": spider.failures, "auth_error": spider.auth_error,
              "relogins": spider.relogins, "stats": stats}
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")


if __name__ == "__main__":
    _child(sys.argv[1])
