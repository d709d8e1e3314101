"""The generated business (stores, persons, orders) and its ground truth at any instant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox.model import Order, Person, Version

# Columns of Truth.orders rows, in order (also the parquet schema written by write_truth).
ORDER_COLUMNS = (
    "order_id", "truth_id", "person_id", "kind", "channel", "store", "external_id", "order_number",
    "created_at", "updated_at", "status", "payment_status", "currency", "subtotal", "discount", "shipping",
    "tax", "total", "refunded", "fulfilled_by", "ship_by", "pii_masked", "mirror_of", "related_to", "defect",
    "line_count",
)
_MONEY = ("subtotal", "discount", "shipping", "tax", "total", "refunded")


@dataclass(frozen=True)
class StoreSpec:
    """One sandbox store (a Shopify shop, an Amazon seller in one marketplace, a WooCommerce site, a storefront
    admin site scraped for want of an API, or an order feed).

    Attributes:
        channel: ``amazon``, ``shopify``, ``woocommerce``, ``storefront`` or ``feed``.
        key: the store key, as in ``orderhub.toml`` (e.g. ``acme-us``).
        currency: ISO 4217 currency of the store's orders.
        country: ISO 3166-1 alpha-2 country of most of its customers.
        marketplace_id: Amazon marketplace id (Amazon only).
        seller_id: Amazon merchant token (Amazon only; stores of one seller share buyer relay e-mails).
        weight: relative share of the business's orders placed in this store.
    """

    channel: str
    key: str
    currency: str
    country: str
    marketplace_id: str | None = None
    seller_id: str | None = None
    weight: float = 1.0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class Truth:
    """What orderhub should have found at ``as_of``: plain rows, JSON-friendly except Decimal and datetime.

    Attributes:
        as_of: the instant (aware, UTC) this truth describes.
        orders: one dict per order record visible at ``as_of`` (``created_at <= as_of``), oldest first,
            with the keys in :data:`ORDER_COLUMNS`. ``kind`` is ``real``, ``mirror`` (an Amazon order
            imported into Shopify: the same sale, counted once) or ``defective`` (malformed on the wire,
            must land in quarantine). Status, payment status, ``refunded`` and ``updated_at`` are those
            of the version current at ``as_of``; money is Decimal in ``currency``; ``mirror_of`` and
            ``related_to`` are canonical order ids.
        persons: person_id -> row for every person with at least one visible real order: the Person
            fields (``emails``, ``phones`` as lists; ``address`` as a dict; ``relay_emails`` seller ->
            address), ``name``, ``orders_count`` (visible real orders), ``first_order_at``,
            ``last_order_at``, ``channels`` (sorted ``channel:store`` keys) and ``spent`` (currency ->
            total minus refunds over real, not cancelled orders).
        mirrors: mirror order_id -> original order_id, for visible mirrors.
        defects: order_id -> defect kind, for visible malformed records.
    """

    as_of: datetime
    orders: list[dict[str, Any]]
    persons: dict[str, dict[str, Any]]
    mirrors: dict[str, str]
    defects: dict[str, str]

    @property
    def real_orders(self) -> list[dict[str, Any]]:
        """The visible orders that are neither mirrors nor malformed: one row per real sale."""
        return [row for row in self.orders if row["kind"] == "real"]

    def counts(self) -> dict[str, int]:
        """Headline numbers: visible records = real + mirrors + defective."""
        real = sum(1 for row in self.orders if row["kind"] == "real")
        return {"visible": len(self.orders), "real": real, "mirrors": len(self.mirrors),
                "defective": len(self.defects), "persons": len(self.persons)}

    def frames(self) -> dict[str, Any]:
        """``orders`` and ``persons`` as polars DataFrames with explicit types.

        ``orders`` has the columns of :data:`ORDER_COLUMNS` (money ``Decimal(20, 2)``, times UTC).
        ``persons`` has the person fields with ``emails``, ``phones``, ``channels`` and
        ``relay_emails`` (``seller:address``) as string lists, the address as ``address_*`` columns,
        and one ``spent_<CUR>`` Decimal column per currency.
        """
        return {"orders": _orders_frame({name: [row[name] for row in self.orders] for name in ORDER_COLUMNS}),
                "persons": _persons_frame(self.persons)}


def _money_type(columns: dict[str, list[Any]]) -> Any:
    import polars as pl

    scale = max((-total.as_tuple().exponent for total in columns["total"]), default=2)
    return pl.Decimal(20, max(scale, 2))


def _orders_frame(columns: dict[str, list[Any]]) -> Any:
    """The orders table from one list per column (polars builds typed columns fast from lists)."""
    import polars as pl

    money, time = _money_type(columns), pl.Datetime("us", "UTC")
    schema: dict[str, Any] = {name: pl.String for name in ORDER_COLUMNS}
    schema.update({name: money for name in _MONEY})
    schema.update({"created_at": time, "updated_at": time, "ship_by": time, "pii_masked": pl.Boolean,
                   "line_count": pl.Int32})
    return pl.DataFrame(columns, schema=schema)


def _string_lists(name: str, values: list[list[str]]) -> Any:
    """A List(String) column, built by splitting joined strings: per-row lists are slow in polars."""
    import polars as pl

    sep = "\x1f"  # ASCII unit separator: never inside a name, e-mail or phone
    joined = pl.Series(name, [sep.join(v) if v else None for v in values], dtype=pl.String).str.split(sep)
    return pl.select(pl.when(joined.is_null()).then(pl.lit([], dtype=pl.List(pl.String))).otherwise(joined)
                     .alias(name)).to_series()


def _persons_frame(persons: dict[str, dict[str, Any]]) -> Any:
    """The persons table: the address flattened, relay e-mails as ``seller:address``, one spent column per currency."""
    import polars as pl

    rows = list(persons.values())
    currencies = sorted({cur for row in rows for cur in row["spent"]})
    money = pl.Decimal(20, max((-v.as_tuple().exponent for row in rows for v in row["spent"].values()), default=2))
    time = pl.Datetime("us", "UTC")
    plain: dict[str, Any] = {"person_id": pl.String, "name": pl.String, "first_name": pl.String,
                             "last_name": pl.String, "country": pl.String, "segment": pl.String,
                             "orders_count": pl.Int32, "first_order_at": time, "last_order_at": time}
    series = [pl.Series(key, [row[key] for row in rows], dtype=dtype) for key, dtype in plain.items()]
    series += [_string_lists(key, [row[key] for row in rows]) for key in ("emails", "phones", "channels")]
    series.append(_string_lists("relay_emails", [[f"{k}:{v}" for k, v in row["relay_emails"].items()]
                                                 for row in rows]))
    series += [pl.Series(f"address_{key}", [row["address"][key] for row in rows], dtype=pl.String)
               for key in ("name", "line1", "line2", "city", "region", "postal_code", "country")]
    series += [pl.Series(f"spent_{cur}", [row["spent"].get(cur) for row in rows], dtype=money)
               for cur in currencies]
    return pl.DataFrame(series)


class _Tally:
    """Per-person figures over the visible real orders."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, Any]] = {}

    def add(self, order: Order, version: Version, total: Decimal) -> None:
        if order.person_id is None:
            return
        stat = self.stats.get(order.person_id)
        if stat is None:
            stat = self.stats[order.person_id] = {"n": 0, "first": order.created_at, "channels": set(), "spent": {}}
        stat["n"] += 1
        stat["last"] = order.created_at
        stat["channels"].add(f"{order.channel}:{order.store}")
        if version.status != "cancelled":
            spent = stat["spent"]
            spent[order.currency] = spent.get(order.currency, Decimal(0)) + total - version.refunded

    def rows(self, persons: dict[str, Person]) -> dict[str, dict[str, Any]]:
        out = {}
        for pid, stat in sorted(self.stats.items()):
            person, address = persons[pid], persons[pid].address
            out[pid] = {
                "person_id": pid, "name": f"{person.first_name} {person.last_name}",
                "first_name": person.first_name, "last_name": person.last_name, "emails": list(person.emails),
                "phones": list(person.phones), "country": person.country, "segment": person.segment,
                "orders_count": stat["n"], "first_order_at": stat["first"], "last_order_at": stat["last"],
                "channels": sorted(stat["channels"]),
                "address": {"name": address.name, "line1": address.line1, "line2": address.line2,
                            "city": address.city, "region": address.region, "postal_code": address.postal_code,
                            "country": address.country},
                "relay_emails": dict(person.relay_emails), "spent": stat["spent"],
            }
        return out


@dataclass
class Business:
    """A generated multichannel business: what the emulators serve and the tests check against.

    Attributes:
        stores: the sandbox stores.
        persons: person_id -> Person (the real people behind the orders).
        orders: every order record (real, mirrors, malformed), sorted by ``created_at``.
        seed: the generator seed.
        start: the sandbox "now" at generation (history covers ``[start - days, start]``).
        horizon: the latest instant any order or version lies at (``start + future_days``).
    """

    stores: list[StoreSpec]
    persons: dict[str, Person]
    orders: list[Order]
    seed: int
    start: datetime
    horizon: datetime
    _by_store: dict[str, list[Order]] = field(init=False, repr=False)
    _by_truth_id: dict[str, Order] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_store = {store.key: [] for store in self.stores}
        self._by_truth_id = {}
        for order in self.orders:  # already sorted by created_at, so each store's list is too
            self._by_store[order.store].append(order)
            self._by_truth_id[order.truth_id] = order

    def orders_for(self, store_key: str) -> list[Order]:
        """Every order record of one store, sorted by ``created_at`` (empty for an unknown store)."""
        return self._by_store.get(store_key, [])

    def by_truth_id(self, truth_id: str) -> Order:
        """The order with this truth id (``KeyError`` if there is none)."""
        return self._by_truth_id[truth_id]

    def store(self, key: str) -> StoreSpec:
        """The store spec with this key (``KeyError`` if there is none)."""
        for spec in self.stores:
            if spec.key == key:
                return spec
        raise KeyError(key)

    def _scan(self, as_of: datetime) -> Iterator[tuple[Order, Version, tuple[Any, ...]]]:
        """Every order visible at ``as_of`` with its current version and its values in ORDER_COLUMNS order."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware (UTC)")
        as_of = as_of.astimezone(UTC)
        by_truth_id = self._by_truth_id
        for order in self.orders:
            if order.created_at > as_of:
                break  # sorted by created_at: nothing later is visible
            version = order.version_at(as_of)
            assert version is not None  # the first version is at created_at
            # One pass over the lines instead of four property sums: this runs over millions of orders.
            subtotal = tax = discount = Decimal(0)
            for line in order.lines:
                subtotal += line.quantity * line.unit_price
                tax += line.tax
                discount += line.discount
            discount += order.order_discount
            kind = "mirror" if order.mirror_of else "defective" if order.defect else "real"
            yield order, version, (
                order.order_id, order.truth_id, order.person_id, kind, order.channel, order.store,
                order.external_id, order.order_number, order.created_at, version.at, version.status,
                version.payment_status, order.currency, subtotal, discount, order.shipping, tax,
                subtotal - discount + order.shipping + tax, version.refunded, order.fulfilled_by, order.ship_by,
                order.pii_masked, by_truth_id[order.mirror_of].order_id if order.mirror_of else None,
                by_truth_id[order.related_to].order_id if order.related_to else None, order.defect,
                len(order.lines),
            )

    def truth(self, as_of: datetime) -> Truth:
        """The ground truth at ``as_of`` (aware datetime): see :class:`Truth` for its structure."""
        rows: list[dict[str, Any]] = []
        mirrors: dict[str, str] = {}
        defects: dict[str, str] = {}
        tally = _Tally()
        for order, version, values in self._scan(as_of):
            row = dict(zip(ORDER_COLUMNS, values, strict=True))
            rows.append(row)
            if row["kind"] == "mirror":
                mirrors[row["order_id"]] = row["mirror_of"]
            elif row["kind"] == "defective":
                defects[row["order_id"]] = row["defect"]
            else:
                tally.add(order, version, row["total"])
        return Truth(as_of.astimezone(UTC), rows, tally.rows(self.persons), mirrors, defects)

    def truth_frames(self, as_of: datetime) -> dict[str, Any]:
        """The truth at ``as_of`` as polars DataFrames ``orders`` and ``persons`` (as :meth:`Truth.frames`).

        Builds the columns directly, without a dict per order: use it for millions of orders.
        """
        columns: dict[str, list[Any]] = {name: [] for name in ORDER_COLUMNS}
        appends = [columns[name].append for name in ORDER_COLUMNS]
        tally = _Tally()
        total_at = ORDER_COLUMNS.index("total")
        for order, version, values in self._scan(as_of):
            for append, value in zip(appends, values, strict=True):
                append(value)
            if values[3] == "real":
                tally.add(order, version, values[total_at])
        orders = _orders_frame(columns)
        del columns
        return {"orders": orders, "persons": _persons_frame(tally.rows(self.persons))}

    def write_truth(self, path: str | Path, as_of: datetime | None = None) -> Path:
        """Write the truth at ``as_of`` (default: ``start``) into folder ``path`` for people to inspect.

        Files: ``orders.parquet`` and ``persons.parquet`` (schemas as :meth:`Truth.frames`; open them
        with DuckDB or polars), ``mirrors.json`` and ``defects.json`` (order_id maps) and
        ``summary.json`` (seed, times, stores, counts).

        Returns:
            The folder written.
        """
        import polars as pl

        as_of = (as_of or self.start).astimezone(UTC)
        frames = self.truth_frames(as_of)
        orders, persons = frames["orders"], frames["persons"]
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        orders.write_parquet(folder / "orders.parquet")
        persons.write_parquet(folder / "persons.parquet")
        mirrors = dict(orders.filter(pl.col("kind") == "mirror").select("order_id", "mirror_of").iter_rows())
        defects = dict(orders.filter(pl.col("kind") == "defective").select("order_id", "defect").iter_rows())
        (folder / "mirrors.json").write_text(json.dumps(mirrors, indent=1))
        (folder / "defects.json").write_text(json.dumps(defects, indent=1))
        counts = {"visible": orders.height, "real": orders.filter(pl.col("kind") == "real").height,
                  "mirrors": len(mirrors), "defective": len(defects), "persons": persons.height}
        summary = {
            "seed": self.seed, "start": _iso(self.start), "horizon": _iso(self.horizon), "as_of": _iso(as_of),
            "stores": [asdict(spec) for spec in self.stores], "counts": counts,
            "orders_total": len(self.orders), "persons_total": len(self.persons),
        }
        (folder / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
        return folder

    def fingerprint(self) -> str:
        """SHA-256 over every person and order with all versions: equal fingerprints, equal businesses."""
        digest = hashlib.sha256()
        for person in self.persons.values():
            digest.update(repr(person).encode())
        for order in self.orders:
            digest.update(repr(order).encode())
        return digest.hexdigest()
