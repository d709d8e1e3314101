"""``orderhub customers why A B``: how two identities relate, in words customer service can check.

Reads the warehouse's ``customer_identities``, ``customer_links`` and ``customer_review`` (written by
:func:`dedupe.identity.resolve_customers`) and the CRM store's ``identity_overrides``.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import duckdb

RULES = {
    "email": "the same e-mail address",
    "phone": "the same phone number, with names that can be one person",
    "channel_customer": "the same customer account of the shop",
    "mirror": "one purchase: a marketplace order and its copy in the shop",
    "must_link": "a person merged them",
    "identical": "identical name, e-mail, phone and address",
    "splink": "the probabilistic model",
}


def _identity(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
    row = con.execute("""SELECT identity_key, channel, store, name, email, phone, line1, postal_code, country,
                                customer_id, rule, score FROM customer_identities WHERE identity_key = ?""",
                      [key]).fetchall()
    cols = ("identity_key", "channel", "store", "name", "email", "phone", "line1", "postal_code", "country",
            "customer_id", "rule", "score")
    return dict(zip(cols, row[0], strict=True)) if row else {}


def _describe(ident: dict[str, Any]) -> str:
    parts = [ident.get("name"), ident.get("email"), ident.get("phone"),
             " ".join(p for p in (ident.get("line1"), ident.get("postal_code"), ident.get("country")) if p)]
    return f"{ident['identity_key']} ({ident['channel']} {ident['store']}): " + ", ".join(p for p in parts if p)


def _weights(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        weights = json.loads(raw)
    except ValueError:
        return raw
    return " [" + ", ".join(f"{k} {v:+.1f}" for k, v in weights.items()) + "]"


def _hop(rule: str, probability: float | None, weights: str | None) -> str:
    text = RULES.get(rule, f"linker {rule!r}")
    if rule == "splink" and probability is not None:
        text += f", match probability {probability:.4f}{_weights(weights)}"
    return text


def _overrides(settings: Any, keys: set[str]) -> list[dict[str, Any]]:
    from crm.store import CrmStore

    store = CrmStore(settings.crm_database_url)
    try:
        store.create_all()
        return [o for o in store.overrides(active_only=True) if {o["left_key"], o["right_key"]} == keys]
    finally:
        store.close()


def explain(settings: Any, left: str, right: str) -> list[str]:
    """Lines explaining how identities ``left`` and ``right`` relate (see the module docstring)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        a, b = _identity(con, left), _identity(con, right)
        if not a or not b:
            missing = left if not a else right
            return [f"{missing} is not an identity in the warehouse"]
        lines = [_describe(a), _describe(b)]
        overrides = _overrides(settings, {left, right})
        for o in overrides:
            verb = "merged them" if o["kind"] == "must_link" else "kept them apart"
            lines.append(f"{o['author'] or 'someone'} {verb} on {o['created_at']:%Y-%m-%d}"
                         + (f": {o['note']}" if o.get("note") else ""))
        if a["customer_id"] == b["customer_id"]:
            edges = con.execute("SELECT left_key, right_key, rule, probability, weights FROM customer_links "
                                "WHERE customer_id = ?", [a["customer_id"]]).fetchall()
            path = _path(edges, left, right)
            lines.append(f"one customer, {a['customer_id']}.")
            if path is None:
                lines.append("Linked through identities identical in every normalized field.")
            for x, y, rule, p, w in path or []:
                lines.append(f"  {x} -> {y}: {_hop(rule, p, w)}")
            return lines
        lines.append(f"two customers: {a['customer_id']} and {b['customer_id']}.")
        review = con.execute("""SELECT probability, weights FROM customer_review
                                WHERE (left_key = ? AND right_key = ?) OR (left_key = ? AND right_key = ?)""",
                             [left, right, right, left]).fetchall()
        if review:
            p, w = review[0]
            lines.append(f"The model found them alike (match probability {p:.4f}{_weights(w)}), not enough to merge "
                         "by itself: they are in the review queue. `orderhub customers merge` or `unmerge` decides.")
        elif not any(o["kind"] == "cannot_link" for o in overrides):
            lines.append("They share no e-mail, phone or shop account, and the model did not score them as a likely "
                         "match (or their names cannot be one person).")
        return lines


def _path(edges: list[tuple[Any, ...]], start: str, goal: str) -> list[tuple[Any, ...]] | None:
    """The shortest chain of links from ``start`` to ``goal`` (breadth first), or None."""
    graph: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}
    for edge in edges:
        x, y = edge[0], edge[1]
        graph.setdefault(x, []).append((y, edge))
        graph.setdefault(y, []).append((x, edge))
    previous: dict[str, tuple[str, tuple[Any, ...]] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt, edge in graph.get(node, []):
            if nxt not in previous:
                previous[nxt] = (node, edge)
                queue.append(nxt)
    if goal not in previous:
        return None
    hops = []
    node = goal
    while previous[node] is not None:
        before, edge = previous[node]  # type: ignore[misc]
        hops.append((before, node, edge[2], edge[3], edge[4]))
        node = before
    return list(reversed(hops))
