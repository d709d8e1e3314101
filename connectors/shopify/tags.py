"""Push CRM tags back to Shopify customers (``tagsAdd`` / ``tagsRemove``), idempotently.

Only tags orderhub manages are touched, and they carry a prefix (``orderhub:vip``), so a merchant's own
customer tags are never removed. A small ledger per store (``$ORDERHUB_HOME/state/shopify-tags/{store}.json``)
remembers what was pushed: each run sends only the difference, and a run that stops half-way is harmless
to repeat (adding a tag a customer has, or removing one it lacks, changes nothing at Shopify).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from connectors.shopify.client import ShopifyClient
from orderhub.errors import FatalError

log = logging.getLogger(__name__)

PREFIX = "orderhub:"
SAVE_EVERY = 50  # customers between ledger saves


def customer_gid(channel_customer_key: str) -> str:
    """The Admin GraphQL id of a customer from the numeric id orderhub keeps (``legacyResourceId``)."""
    key = channel_customer_key.strip()
    return key if key.startswith("gid://") else f"gid://shopify/Customer/{key}"


@dataclass
class PushStats:
    """What one push did for one store."""

    store: str
    customers: int = 0  # customers whose tags changed at Shopify
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # customer ids Shopify refused, with the reason


class TagLedger:
    """What was pushed to a store, per Shopify customer id; saved atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pushed: dict[str, set[str]] = {}
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.pushed = {k: set(v) for k, v in data.items()}

    def save(self) -> None:
        """Write the ledger (a crash between two saves only means re-sending a no-op)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: sorted(v) for k, v in sorted(self.pushed.items()) if v}), encoding="utf-8")
        os.replace(tmp, self.path)


def push_tags(client: ShopifyClient, wanted: dict[str, set[str]], ledger: TagLedger) -> PushStats:
    """Make the orderhub tags of each Shopify customer equal ``wanted``.

    Args:
        client: the shop's client (its cost budget paces the mutations).
        wanted: Shopify customer id (numeric or gid) -> tag names without the prefix (e.g. {"vip"}); customers
            the ledger knows and ``wanted`` lacks lose their orderhub tags.
        ledger: what was pushed before.
    """
    stats = PushStats(client.store.key)
    desired = {customer_gid(k): {PREFIX + t for t in v} for k, v in wanted.items()}
    for gid in sorted(set(desired) | set(ledger.pushed)):
        want, had = desired.get(gid, set()), ledger.pushed.get(gid, set())
        add, remove = sorted(want - had), sorted(had - want)
        if not add and not remove:
            stats.unchanged += 1
            continue
        try:
            client.tags(gid, add, remove)
        except FatalError as exc:  # Shopify refused this customer (userErrors): the others go on
            stats.failed.append(f"{gid}: {exc}")
            log.warning("shopify %s: tags of %s not pushed: %s", client.store.key, gid, exc)
            continue
        ledger.pushed[gid] = want
        stats.customers += 1
        stats.added += len(add)
        stats.removed += len(remove)
        if stats.customers % SAVE_EVERY == 0:
            ledger.save()
    ledger.save()
    return stats
