"""SIGKILL in the middle of a sync, then a rerun: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from orderhub import clock, ops
from orderhub.config import load_settings
from sandbox.server import Sandbox
from tests.e2e.helpers import expected

pytestmark = pytest.mark.xdist_group("e2e-crash")


def test_sigkill_mid_sync_then_rerun_loses_and_duplicates_nothing(tmp_path) -> None:
    with Sandbox(tmp_path, orders=1200, seed=11, speed=1000.0) as sb:
        settings = load_settings(tmp_path)
        amazon = sb.emulator("amazon")
        # The second searchOrders page stalls, so the killed process has landed some pages, not all.
        amazon.faults.add("timeout", path=r"/orders/2026-01-01/orders$", after=1, stall=30)
        env = {**os.environ, "ORDERHUB_HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
        proc = subprocess.Popen([sys.executable, "-m", "orderhub", "sync"], env=env)
        landing = ops.landing_store(settings)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(m.channel == "amazon" and m.records for m in landing.manifests()):
                break
            time.sleep(0.05)
        else:
            proc.kill()
            pytest.fail("the sync never landed an Amazon page")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_state = [m.batch_id for m in landing.manifests()]
        assert killed_state, "something was landed before the kill"
        amazon.faults.clear()

        for store in settings.stores:
            ops.sync_store(settings, store.key)
        ops.process(settings)
        exp = expected(sb.business, landing)
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            ids = [r[0] for r in con.execute("select order_id from orders").fetchall()]
        assert len(ids) == len(set(ids))
        assert set(ids) - exp.inflight == (set(exp.real) | set(exp.mirrors)) - exp.inflight
    clock.use_offset_file(None)
