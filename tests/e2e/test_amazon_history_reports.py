"""Amazon history read through order reports, end to end on the sandbox: every order once, in its current state."""

from __future__ import annotations

import itertools
import math
import re
from datetime import timedelta

import duckdb
import pytest

from orderhub import clock, ops
from orderhub.config import CONFIG_NAME, load_settings
from sandbox.server import Sandbox
from tests.e2e.helpers import expected

pytestmark = pytest.mark.xdist_group("e2e")


def test_a_backfill_through_reports_then_incremental_syncs_match_the_truth(tmp_path) -> None:
    with Sandbox(tmp_path, orders=900, seed=13, speed=1000.0) as sb:
        config = tmp_path / CONFIG_NAME
        text = config.read_text(encoding="utf-8")
        config.write_text(re.sub(r'(channel = "amazon"\n)', r'\1history = "reports"\nreports_after_hours = 24\n', text), encoding="utf-8")
        settings = load_settings(tmp_path)
        amazon = [s.key for s in settings.stores if s.channel == "amazon"]
        assert amazon and all(s.history == "reports" for s in settings.stores if s.channel == "amazon")
        for key in amazon:
            ops.sync_store(settings, key)
        # The history is read in reports of at most 30 days that tile it without gaps: 90 days and the
        # minutes the sandbox clock ran on (1,000x) take three or four reports per store.
        reports = sorted(sb.emulator("amazon").reports.values(), key=lambda r: (r.marketplaces, r.start))
        for store in {tuple(r.marketplaces) for r in reports}:
            mine = [r for r in reports if tuple(r.marketplaces) == store]
            assert all(r.end - r.start <= timedelta(days=30) for r in mine)
            assert all(a.end >= b.start for a, b in itertools.pairwise(mine))  # windows touch or overlap
            assert len(mine) == math.ceil((mine[-1].end - mine[0].start) / timedelta(days=30))
        assert len(reports) >= 3 * len(amazon) and len({tuple(r.marketplaces) for r in reports}) == len(amazon)
        ops.process(settings)
        # Hours later (under reports_after_hours, 24 here), once some Amazon order has changed: changes arrive
        # through the Orders API as full versions.
        now = clock.now()
        upcoming = min(v.at for o in sb.business.orders if o.channel == "amazon" for v in o.versions if v.at > now)
        hours = max(0.2 * 24, (upcoming - now).total_seconds() / 3600 + 0.1)
        assert hours < 24.0, "the sandbox business has no Amazon change within the Orders API window"
        sb.advance(hours / 24)
        for key in amazon:
            ops.sync_store(settings, key)
        ops.process(settings)
        exp = expected(sb.business, ops.landing_store(settings))
        want = {oid: v for oid, (o, v) in exp.real.items() if o.channel == "amazon"}
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            rows = {r[0]: r[1:] for r in con.execute(
                "select order_id, status, payment_status, partial, email from orders where channel = 'amazon'"
            ).fetchall()}
            quarantined = con.execute("select count(*) from quarantine where channel = 'amazon'").fetchone()[0]
        assert set(want) - exp.inflight == set(rows) - exp.inflight - set(exp.defective)
        for order_id, version in want.items():
            if order_id not in exp.inflight:
                assert rows[order_id][:2] == (version.status, version.payment_status), order_id
        assert quarantined >= 1  # the sandbox's malformed Amazon records, each with its reasons
        partial = [oid for oid, r in rows.items() if r[2]]
        assert partial, "history came through reports"
        assert all(rows[oid][3] is None for oid in partial)  # a report carries no buyer e-mail
        # Orders the Orders API served since are full versions: with their buyer e-mail unless Amazon masked it.
        truth = {o.order_id: o for o in sb.business.orders}
        full = [oid for oid, r in rows.items() if not r[2]]
        assert full
        for oid in full:
            assert (rows[oid][3] is not None) == (not truth[oid].pii_masked and truth[oid].email is not None), oid
        # Customer service asks for one order again: `orderhub sync --store amz-us --order ID`.
        one = next(o for oid, (o, _) in exp.real.items() if o.store == "amz-us")
        cursor = ops.landing_store(settings).state("amazon", "amz-us", "orders")
        [again] = ops.refetch_orders(settings, "amz-us", [one.external_id])
        assert again.records == 1 and ops.landing_store(settings).state("amazon", "amz-us", "orders") == cursor
    clock.use_offset_file(None)
