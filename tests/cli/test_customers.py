"""Customer service corrects identity resolution: unmerge, merge and why, kept by every later run."""

from __future__ import annotations

import duckdb
import pytest
from typer.testing import CliRunner

from orderhub import clock, ops
from orderhub.cli import app
from orderhub.config import load_settings
from sandbox.server import Sandbox

pytestmark = pytest.mark.xdist_group("e2e")


def _customer(settings, key: str) -> str:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("SELECT customer_id FROM customer_identities WHERE identity_key = ?", [key]).fetchall()[0][0]


def test_unmerge_and_merge_survive_full_reruns_and_why_explains(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ORDERHUB_HOME", str(tmp_path))
    runner = CliRunner()
    with Sandbox(tmp_path, orders=700, seed=21, speed=1000.0):
        settings = load_settings(tmp_path)
        for store in settings.stores:
            ops.sync_store(settings, store.key)
        ops.process(settings)
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            # Two identities joined by one link only (a pair whose unmerge splits the customer).
            linked = con.execute("""
                SELECT l.left_key, l.right_key, l.rule FROM customer_links l
                JOIN (SELECT customer_id FROM customer_identities GROUP BY customer_id HAVING count(*) = 2) c
                  USING (customer_id)
                ORDER BY l.rule = 'email' DESC, l.left_key LIMIT 1""").fetchall()
            apart = con.execute("""
                SELECT a.identity_key, b.identity_key FROM customer_identities a, customer_identities b
                WHERE a.customer_id < b.customer_id AND a.name IS NOT NULL AND b.name IS NOT NULL
                ORDER BY a.identity_key, b.identity_key LIMIT 1""").fetchall()
        (a, b, _rule), (c, d) = linked[0], apart[0]
        assert _customer(settings, a) == _customer(settings, b)

        why = runner.invoke(app, ["customers", "why", a, b])
        assert why.exit_code == 0, why.output
        assert "one customer" in why.output and a in why.output and b in why.output

        out = runner.invoke(app, ["customers", "unmerge", a, b, "--note", "two people, one inbox", "--author", "cs-1"])
        assert out.exit_code == 0, out.output
        assert _customer(settings, a) != _customer(settings, b)
        out = runner.invoke(app, ["customers", "merge", c, d, "--author", "cs-1"])
        assert out.exit_code == 0, out.output
        assert _customer(settings, c) == _customer(settings, d)

        ops.process(settings)  # a full rerun: both decisions hold
        assert _customer(settings, a) != _customer(settings, b)
        assert _customer(settings, c) == _customer(settings, d)
        why = runner.invoke(app, ["customers", "why", a, b])
        assert "two customers" in why.output and "kept them apart" in why.output and "two people, one inbox" in why.output
        why = runner.invoke(app, ["customers", "why", c, d])
        assert "merged them" in why.output and "a person merged them" in why.output

        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            pending = con.execute("SELECT count(*) FROM customer_review").fetchall()[0][0]
        review = runner.invoke(app, ["customers", "review", "--limit", "5"])
        assert review.exit_code == 0 and f"pairs to review ({pending:,} in all)" in review.output

        bad = runner.invoke(app, ["customers", "why", a, "nobody:at:all"])
        assert bad.exit_code != 0
    clock.use_offset_file(None)
