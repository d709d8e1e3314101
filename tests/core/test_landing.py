"""Landing: atomic batches, the manifest as state, crash leftovers ignored."""

from __future__ import annotations

import json

import pytest

from connectors.landing import LandingStore, Part


def test_batches_are_sequential_and_the_newest_manifest_is_the_state(tmp_path) -> None:
    store = LandingStore(tmp_path)
    body = '{"orders": [{"name": "Zoë Ångström"}]}'.encode()
    m1 = store.write_batch("shopify", "acme", "orders", [Part("shopify.graphql.orders", body, 1)], {"since": "a"})
    m2 = store.write_batch("shopify", "acme", "orders", [], None)
    assert (m1.seq, m2.seq) == (1, 2)
    assert m2.cursor == {"since": "a"}  # an empty page keeps the cursor it was given or the previous one
    assert store.state("shopify", "acme", "orders") == {"since": "a"}
    assert store.read_part(m1, m1.parts[0]) == body  # byte for byte
    assert [m.batch_id for m in store.manifests()] == ["shopify/acme/orders/00000001", "shopify/acme/orders/00000002"]


def test_parts_without_manifest_are_not_a_batch(tmp_path) -> None:
    store = LandingStore(tmp_path)
    store.write_batch("amazon", "amz-us", "orders", [Part("k", b"{}", 0)], {"since": "x"})
    # A crash after writing a part but before the manifest leaves an orphan folder.
    orphan = tmp_path / "amazon" / "amz-us" / "orders" / "00000002"
    orphan.mkdir()
    (orphan / "part-0001.json").write_bytes(b'{"half":')
    assert store.latest_manifest("amazon", "amz-us", "orders").seq == 1
    assert len(list(store.manifests())) == 1
    # The next batch reuses the slot and overwrites the orphan.
    m = store.write_batch("amazon", "amz-us", "orders", [Part("k", b"[]", 0)], {"since": "y"})
    assert m.seq == 2
    assert json.loads((orphan / "manifest.json").read_text())["cursor"] == {"since": "y"}
    assert not list(orphan.glob("*.tmp"))


def test_names_are_checked(tmp_path) -> None:
    with pytest.raises(ValueError, match="store"):
        LandingStore(tmp_path).write_batch("shopify", "../etc", "orders", [], None)


def test_fsspec_memory_url() -> None:
    store = LandingStore("memory://orderhub-test/landing")
    m = store.write_batch("woocommerce", "woo", "orders", [Part("woocommerce.rest.orders", b"[1]", 1)], {"since": "z"})
    assert store.read_part(m, m.parts[0]) == b"[1]"
    assert store.state("woocommerce", "woo", "orders") == {"since": "z"}
