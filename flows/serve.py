"""``orderhub flows serve``: every schedule served locally, with a local Prefect server and its UI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any

from prefect import serve
from prefect.schedules import Cron

from flows.orderhub_flows import (
    WAREHOUSE_LIMIT,
    export_flow,
    report_flow,
    sync_store_flow,
    tags_flow,
)
from orderhub.config import Settings

log = logging.getLogger(__name__)


def deployments(settings: Settings) -> list[Any]:
    """The deployments of prefect.yaml, built from the config: one sync deployment per enabled store."""
    home = str(settings.home)
    deps = [
        sync_store_flow.to_deployment(
            name=f"sync-{store.channel}-{store.key}", interval=900, parameters={"store": store.key, "home": home},
            concurrency_limit=1, tags=["sync", store.channel],
        )
        for store in settings.stores
        if store.enabled
    ]
    deps.append(export_flow.to_deployment(name="export", schedule=Cron("0 * * * *", timezone=settings.timezone),
                                          parameters={"home": home}, concurrency_limit=1))
    deps.append(report_flow.to_deployment(name="report", schedule=Cron("0 6 * * *", timezone=settings.timezone),
                                          parameters={"home": home}))
    deps.append(tags_flow.to_deployment(name="tags", schedule=Cron("30 2 * * *", timezone=settings.timezone),
                                        parameters={"home": home}))
    return deps


def _ensure_server() -> subprocess.Popen[bytes] | None:
    """Start ``prefect server start`` unless PREFECT_API_URL points at a server already."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    port = os.environ.get("ORDERHUB_PREFECT_PORT", "4200")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", port])
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    from prefect.client.orchestration import get_client

    for _ in range(120):
        try:
            with get_client(sync_client=True) as client:
                client.api_healthcheck()
                break
        except Exception:  # noqa: BLE001 - the server is still starting
            time.sleep(1)
    log.warning("Prefect UI: http://127.0.0.1:%s", port)
    return proc


def _ensure_limit() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(WAREHOUSE_LIMIT)
        except Exception:  # noqa: BLE001 - not found: create it
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=WAREHOUSE_LIMIT, limit=1))


def serve_all(settings: Settings) -> None:
    """Serve every deployment until interrupted (Ctrl-C)."""
    server = _ensure_server()
    try:
        _ensure_limit()
        serve(*deployments(settings))
    finally:
        if server is not None:
            server.terminate()
