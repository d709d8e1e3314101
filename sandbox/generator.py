"""Seeded generator of a realistic multichannel business (Shopify, Amazon, WooCommerce, a scraped storefront
and an order feed) with its ground truth.

``generate(start=...)`` returns a :class:`~sandbox.business.Business`: people who buy on several
channels under different e-mails, phone formats, typos and address abbreviations; Amazon relay
e-mails, masked PII and FBA; ~5% of Amazon orders mirrored into a Shopify store of the same currency;
orders that move through payment, shipment, cancellation and refund over days (also after
``start``, up to ``start + future_days``); and a known share of malformed records.

Same seed and arguments give the same business (same Python and Faker versions): all randomness
comes from one ``random.Random(seed)`` and Faker instances seeded per pool.

``orders`` is the number of order records (mirrors and malformed records included) created in the
``days`` of history; the ``future_days`` after ``start`` get the same daily rate on top, so the
business holds ``round(orders * (days + future_days) / days)`` records, spread evenly (mild growth,
evening peaks) over ``[start - days, start + future_days]``.

Defect vocabulary (``Order.defect``; the Order's own fields stay clean, the emulator corrupts the
record when it renders it, so the truth keeps what the record should have said):

- ``missing_id``: the order id field is absent or empty.
- ``bad_total``: the order total is not a number (e.g. ``"12,34"``).
- ``bad_date``: the creation timestamp cannot be parsed (e.g. ``"31/02/2024 25:61"``).
- ``unknown_currency``: the currency code is not ISO 4217 (``"ZZZ"``).
- ``negative_quantity``: one line has quantity ``-1``.
- ``missing_lines``: the order has no line items.

Malformed orders are never mirrored nor replaced and have a single version.

Life cycles (see :mod:`sandbox.lifecycle`): Amazon orders mostly start ``pending`` (their wire
totals are unknown then; the Order keeps the truth), ship within 1-3 days (FBA within a day, ~4%
late past ``ship_by``), ~3% are cancelled (Amazon: whole order, ``voided``; the items are then
shown with QuantityOrdered 0; a paid Shopify/Woo order is ``refunded`` on cancel), ~4% of Shopify
and WooCommerce orders are refunded in part or in full days after delivery (Amazon refunds live in
the Finances API, not on the Orders wire, so Amazon orders stay ``fulfilled``/``paid``). Amazon replacement orders are zero-priced and carry
``related_to``. Money is Decimal in the currency's minor unit; stores in VAT countries quote
tax-inclusive shelf prices, stored as net unit price + tax so that ``Line.total`` is the shelf total.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox import catalog, lifecycle
from sandbox.accounts import Accounts, Shown
from sandbox.business import Business, StoreSpec, Truth
from sandbox.catalog import money, price_point, scaled, tax_rate
from sandbox.model import Address, Line, Order, Version
from sandbox.people import Profile, make_people, recipient

__all__ = ["DEFAULT_STORES", "DEFECTS", "Business", "StoreSpec", "Truth", "generate"]

DEFAULT_STORES: list[StoreSpec] = [
    StoreSpec("shopify", "acme-us", "USD", "US", weight=0.28),
    StoreSpec("shopify", "acme-eu", "EUR", "DE", weight=0.15),
    StoreSpec("amazon", "amz-us", "USD", "US", marketplace_id="ATVPDKIKX0DER", seller_id="A1SELLER", weight=0.30),
    StoreSpec("amazon", "amz-ca", "CAD", "CA", marketplace_id="A2EUQ1WTGCTBG2", seller_id="A1SELLER", weight=0.12),
    StoreSpec("woocommerce", "woo-shop", "GBP", "GB", weight=0.15),
    # A self-built German shop with admin pages only (scraped), and a marketplace's order export feed.
    StoreSpec("storefront", "laden-de", "EUR", "DE", weight=0.06),
    StoreSpec("feed", "market-gb", "GBP", "GB", weight=0.05),
]
DEFECTS = ("missing_id", "bad_total", "bad_date", "unknown_currency", "negative_quantity", "missing_lines")
CHANNELS = ("amazon", "shopify", "woocommerce", "storefront", "feed")
# Defects a channel can show. A web page always has its order id in the URL and one currency for the
# whole shop, so a scraped storefront shows only bad values and missing items; other defects turn into these.
CHANNEL_DEFECTS = {"storefront": ("bad_total", "bad_date", "negative_quantity", "missing_lines")}

MIRROR_RATE = 0.05  # share of mirror-eligible Amazon orders a Shopify import app copies
REPLACEMENT_RATE = 0.006  # Amazon replacement orders (IsReplacementOrder) per Amazon order
MASKED_RATE = 0.20  # Amazon orders read without the PII role (no buyer e-mail, name, phone, street)
FBA_RATE = 0.25  # Amazon orders fulfilled by Amazon (AFN)
GIFT_RATE = 0.02  # orders shipped to someone else
PERSONS_PER_ORDER = 1 / 2.5
AMAZON_SHIP_BY = timedelta(days=2)  # latest ship date of a standard 1-2 day handling time

# Amazon order id first groups by marketplace (observed prefixes; others get a random 3-digit group).
_AMAZON_PREFIXES = {"ATVPDKIKX0DER": ("111", "112", "113", "114"), "A2EUQ1WTGCTBG2": ("701", "702")}
# Rough UTC offsets of where customers live: orders peak in their evening.
_UTC_OFFSET_HOURS = {"US": -6, "CA": -5, "MX": -6, "GB": 0, "IE": 0, "PT": 0, "JP": 9, "AU": 10, "NZ": 12,
                     "IN": 5, "BR": -3}
_HOUR_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.0, 2.4, 2.6, 2.8, 3.0, 2.8, 2.6, 2.6, 2.8, 3.0, 3.3,
                 3.8, 4.0, 3.6, 2.6, 1.6)
_HOUR_CUM = tuple(sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24))
_GROWTH = 0.1  # the business grows 10% over the window
_PROMOS = (Decimal("0.10"), Decimal("0.15"), Decimal("0.20"))
_NO_PROMO = Decimal(0)
_EU = frozenset({"DE", "GB", "FR", "IT", "ES", "NL", "AT", "BE", "IE", "PL", "SE", "DK", "PT", "CH"})


def _region(country: str) -> str:
    return "NA" if country in ("US", "CA", "MX") else "EU" if country in _EU else country


class _Builder:
    """One generation run: the random source, the people and every order made so far."""

    def __init__(self, seed: int, stores: list[StoreSpec], start: datetime, days: int, future_days: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.stores = stores
        self.start = start
        self.t0 = start - timedelta(days=days)
        self.horizon = start + timedelta(days=future_days)
        self.span = max(1, int((self.horizon - self.t0).total_seconds()))
        self.accounts = Accounts(self.rng)
        self.products, self.popularity = catalog.catalog(seed)
        self.lines: dict[tuple[object, ...], Line] = {}  # Lines are immutable: share equal ones (memory)
        self.profiles: list[Profile] = []
        # Each Shopify store of an Amazon store's currency may receive its mirrors; the first one does.
        self.mirror_target: dict[int, int] = {}
        for a, spec in enumerate(stores):
            if spec.channel == "amazon":
                for s, other in enumerate(stores):
                    if other.channel == "shopify" and other.currency == spec.currency:
                        self.mirror_target[a] = s
                        break

    # -- people and when they buy ---------------------------------------------------------------
    def people(self, count: int, sales: int) -> list[int]:
        """Make ``count`` people and their order counts summing to ``sales``; returns the counts."""
        rng = self.rng
        weights: dict[str, float] = {}
        for spec in self.stores:
            weights[spec.country] = weights.get(spec.country, 0.0) + spec.weight
        countries = rng.choices(list(weights), list(weights.values()), k=count)
        self.profiles = make_people(rng, countries, self.seed)
        counts = [self._order_count(rng) for _ in range(count)]
        # Bring the total to ``sales`` through the repeat buyers, so the ~60% one-time share holds
        # (count <= sales, so there is always someone to take an order from).
        gap = sales - sum(counts)
        while gap < 0:
            pool = [i for i, c in enumerate(counts) if c >= 3] or [i for i, c in enumerate(counts) if c >= 2]
            for i in rng.sample(pool, min(-gap, len(pool))):
                counts[i] -= 1
                gap += 1
        while gap > 0:
            pool = [i for i, c in enumerate(counts) if c >= 2] or list(range(count))
            for i in rng.sample(pool, min(gap, len(pool))):
                counts[i] += 1
                gap -= 1
        for profile, n in zip(self.profiles, counts, strict=True):
            segment = "one_time" if n == 1 else "vip" if n >= 10 else "repeat"
            if segment == "repeat" and n >= 3 and rng.random() < 0.15:
                segment = "churned"  # bought regularly, then stopped: the CRM's at-risk case
            profile.segment = profile.person.segment = segment
            profile.stores = self._stores_of(profile.person.country, n)
        return counts

    @staticmethod
    def _order_count(rng: random.Random) -> int:
        roll = rng.random()
        if roll < 0.60:
            return 1
        if roll < 0.85:
            return rng.randint(2, 3)
        if roll < 0.97:
            return rng.randint(4, 9)
        if roll < 0.995:
            return rng.randint(10, 24)
        return rng.randint(25, 80)

    def _stores_of(self, country: str, orders: int) -> list[int]:
        """Primary store (mostly one in the home country) and, for some repeat buyers, a second channel."""
        rng = self.rng
        region = _region(country)

        def affinity(spec: StoreSpec, near: float, far: float) -> float:
            same = spec.country == country
            return spec.weight * (1.0 if same else near if _region(spec.country) == region else far)

        indexes = list(range(len(self.stores)))
        primary = rng.choices(indexes, [affinity(s, 0.04, 0.005) for s in self.stores])[0]
        chosen = [primary]
        if orders >= 2 and len(indexes) > 1 and rng.random() < 0.4:
            others = [i for i in indexes if i != primary]
            chosen.append(rng.choices(others, [affinity(self.stores[i], 0.12, 0.02) for i in others])[0])
        return chosen

    def _moment(self, fraction: float, country: str) -> datetime:
        """The instant at ``fraction`` of the window, moved to a likely hour of the buyer's local day."""
        rng = self.rng
        # Inverse CDF of a density growing linearly by _GROWTH over the window.
        grown = (-1 + math.sqrt(1 + 2 * _GROWTH * fraction * (1 + _GROWTH / 2))) / _GROWTH
        offset = _UTC_OFFSET_HOURS.get(country, 1) * 3600
        t0 = int(self.t0.timestamp())
        local = t0 + int(grown * self.span) + offset
        hour = bisect.bisect(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
        moment = local - local % 86400 + hour * 3600 + int(rng.random() * 3600) - offset
        # Keep the hour, move a day inward when the local day crosses either end of the window.
        if moment < t0:
            moment += 86400
        if moment > t0 + self.span:
            moment -= 86400
        moment = min(max(moment, t0), t0 + self.span)
        return datetime.fromtimestamp(moment, UTC)

    def slots(self, counts: list[int]) -> list[tuple[int, int, datetime]]:
        """(person, store, created_at) of every sale."""
        rng = self.rng
        # Churned buyers stop at least 95 days before start when the history is long enough (the CRM's
        # at-risk rule looks back 90 days), else within the first 30% of the history.
        cutoff = (self.start - timedelta(days=95) - self.t0).total_seconds() / self.span
        churn_end = cutoff if cutoff > 0.1 else 0.3 * (self.start - self.t0).total_seconds() / self.span
        out: list[tuple[int, int, datetime]] = []
        for profile, n in zip(self.profiles, counts, strict=True):
            if profile.segment == "churned":
                low, high = 0.0, churn_end
            elif n >= 3:
                # A buying period of 30-100% of the window centred anywhere; what falls off an end is
                # reflected back, which keeps the business's daily rate even up to both ends.
                width = 0.3 + 0.7 * rng.random()
                low = rng.random() - width / 2
                high = low + width
            else:
                low, high = 0.0, 1.0
            fractions = sorted(abs(1 - abs(1 - (low + (high - low) * rng.random()))) for _ in range(n))
            stores = profile.stores
            for k, fraction in enumerate(fractions):
                if len(stores) == 1:
                    store = stores[0]
                elif k < 2:
                    store = stores[k]  # a multi-channel buyer uses both channels at least once
                else:
                    store = stores[0] if rng.random() < 0.62 else stores[1]
                out.append((profile.index - 1, store, self._moment(fraction, profile.person.country)))
        return out

    # -- one order ------------------------------------------------------------------------------
    def _line(self, channel: str, currency: str, product: catalog.Product, qty: int, off: Decimal,
              rate: Decimal, included: bool) -> Line:
        key = (product.sku, channel, currency, qty, off, rate, included)
        line = self.lines.get(key)
        if line is None:
            price = price_point(product.usd, currency)
            if included:
                # The shelf price includes VAT: derive the net unit price, keep the gross line total exact.
                gross = price * qty
                gross_off = money(gross * off, currency)
                net = money(price / (1 + rate), currency)
                net_off = money(gross_off / (1 + rate), currency)
                line = Line(product.sku, product.title(channel), qty, net, net_off,
                            gross - gross_off - (net * qty - net_off))
            else:
                line_off = money(price * qty * off, currency)
                line = Line(product.sku, product.title(channel), qty, price, line_off,
                            money((price * qty - line_off) * rate, currency))
            self.lines[key] = line
        return line

    def _lines(self, spec: StoreSpec, ship_to: Address | None, vip: bool) -> list[Line]:
        rng = self.rng
        roll = rng.random()
        n = 1 if roll < 0.65 else 2 if roll < 0.87 else 3 if roll < 0.95 else rng.randint(4, 6)
        if vip and rng.random() < 0.5:
            n += 1  # VIPs buy bigger baskets
        country = ship_to.country if ship_to is not None else spec.country
        region = ship_to.region if ship_to is not None else None
        rate = tax_rate(spec.country, country, region)
        included = spec.country in catalog.TAX_INCLUDED
        promo = 0.08 if spec.channel == "amazon" else 0.04
        products, popularity, random_ = self.products, self.popularity, rng.random
        picked: list[catalog.Product] = []
        for _ in range(n):
            product = products[bisect.bisect(popularity, random_() * popularity[-1])]
            if product not in picked:  # a second pick of the same variant is not a second line
                picked.append(product)
        lines = []
        for product in picked:
            roll = random_()
            qty = 1 if roll < 0.72 else 2 if roll < 0.90 else 3 if roll < 0.96 else rng.randint(4, 6)
            off = _PROMOS[int(random_() * 3)] if random_() < promo else _NO_PROMO
            lines.append(self._line(spec.channel, spec.currency, product, qty, off, rate, included))
        return lines

    def _charges(self, spec: StoreSpec, lines: list[Line], marketplace: bool) -> tuple[Decimal, Decimal]:
        """(shipping, order-level discount) in the store's currency."""
        rng, cur = self.rng, spec.currency
        goods = sum((line.quantity * line.unit_price - line.discount for line in lines), Decimal(0))
        zero = catalog.zero(cur)
        if spec.channel == "amazon":
            # Prime and FBA ship free; Amazon promotions are per item, never order-level.
            shipping = zero if marketplace or rng.random() < 0.7 else price_point(5, cur)
            return shipping, zero
        free_from = scaled(75 if spec.channel == "shopify" else 60, cur)
        shipping = zero if goods >= free_from else price_point(7 if spec.channel == "shopify" else 5, cur)
        coupon = money(goods * Decimal(rng.choice(("0.10", "0.15"))), cur) if rng.random() < 0.1 else zero
        return shipping, coupon

    def order(self, person: int, store: int, created: datetime, *, defect: str | None = None,
              may_cancel: bool = True, fate: str | None = None) -> tuple[Order, Shown]:
        """A new order of one person in one store (ids are assigned once all orders exist)."""
        rng = self.rng
        profile, spec = self.profiles[person], self.stores[store]
        amazon = spec.channel == "amazon"
        masked = amazon and rng.random() < MASKED_RATE
        marketplace = amazon and rng.random() < FBA_RATE
        shown = self.accounts.show(profile, store, spec, masked=masked, marketplace=marketplace)
        ship_to = shown.ship_to
        if not masked and rng.random() < GIFT_RATE:
            ship_to = recipient(rng, profile.person.country, self.seed, self.profiles, profile)
        lines = self._lines(spec, ship_to, profile.segment == "vip")
        shipping, coupon = self._charges(spec, lines, marketplace)
        order = Order(
            truth_id="", person_id=profile.person.person_id, channel=spec.channel, store=spec.key, external_id="",
            order_number="", created_at=created, currency=spec.currency, lines=lines, shipping=shipping,
            order_discount=coupon, email=shown.email, phone=shown.phone, buyer_name=shown.name, ship_to=ship_to,
            channel_customer_id=None, fulfilled_by="marketplace" if marketplace else "merchant",
            ship_by=created + AMAZON_SHIP_BY if amazon else None, pii_masked=masked, defect=defect,
        )
        if defect is not None:
            order.versions = [Version(created, "unfulfilled", "paid")]
        else:
            order.versions = lifecycle.life_cycle(
                rng, channel=spec.channel, created=created, total=order.total,
                line_totals=[line.total for line in lines], currency=spec.currency,
                ship_country=(ship_to or profile.person.address).country, marketplace=marketplace,
                order_fate=fate or lifecycle.fate(rng, may_cancel=may_cancel))
        return order, shown

    def mirror(self, original: Order, store: int) -> Order:
        """The copy a Shopify import app makes of an Amazon order once it is paid, following its changes."""
        rng = self.rng
        spec = self.stores[store]
        paid = [v for v in original.versions if v.status != "pending"]
        at = paid[0].at + timedelta(seconds=rng.randrange(120, 900))
        versions = [replace(paid[0], at=at)]
        for version in paid[1:]:
            at = max(version.at + timedelta(seconds=rng.randrange(60, 1800)), at + timedelta(seconds=1))
            versions.append(replace(version, at=at))
        return Order(
            truth_id="", person_id=original.person_id, channel=spec.channel, store=spec.key, external_id="",
            order_number="", created_at=versions[0].at, currency=original.currency, lines=list(original.lines),
            shipping=original.shipping, order_discount=original.order_discount, email=original.email,
            phone=original.phone, buyer_name=original.buyer_name, ship_to=original.ship_to,
            channel_customer_id=None, fulfilled_by=original.fulfilled_by, ship_by=original.ship_by,
            versions=versions,
        )

    def replacement(self, original: Order) -> Order:
        """Amazon's free replacement for a damaged or lost shipment: zero-priced, related to the original."""
        rng = self.rng
        shipped = next(v.at for v in original.versions if v.status == "fulfilled")
        created = shipped + timedelta(seconds=rng.randrange(2 * 86400, 10 * 86400))
        created = max(min(created, self.horizon - timedelta(hours=1)), shipped + timedelta(minutes=1))
        zero = catalog.zero(original.currency)
        source = rng.choice(original.lines)
        lines = [Line(source.sku, source.title, 1, zero, zero, zero)]
        marketplace = original.fulfilled_by == "marketplace"
        country = original.ship_to.country if original.ship_to else self.stores[0].country
        carrier, number = lifecycle.tracking(rng, country, marketplace)
        ship = created + timedelta(seconds=rng.randrange(4 * 3600, 2 * 86400))
        return replace(original, truth_id="", external_id="", order_number="", created_at=created, lines=lines,
                       shipping=zero, order_discount=zero, ship_by=created + AMAZON_SHIP_BY,
                       versions=[Version(created, "unfulfilled", "paid"),
                                 Version(ship, "fulfilled", "paid", tracking_number=number, carrier=carrier)])

    def release(self) -> None:
        """Forget the people's generation details and the account caches once every order exists."""
        self.profiles = []
        self.accounts = Accounts(self.rng)
        self.lines.clear()

    # -- ids --------------------------------------------------------------------------------------
    def assign_ids(self, orders: list[Order], keys: dict[int, object]) -> None:
        """External ids, order numbers and customer ids per store, increasing with creation time."""
        rng = self.rng
        amazon_ids: set[str] = set()
        for spec in self.stores:
            mine = [o for o in orders if o.store == spec.key]
            if spec.channel == "amazon":
                prefixes = _AMAZON_PREFIXES.get(spec.marketplace_id or "", (f"{rng.randrange(100, 1000)}",))
                for order in mine:
                    while not order.external_id or order.external_id in amazon_ids:
                        order.external_id = (f"{prefixes[int(rng.random() * len(prefixes))]}-"
                                             f"{int(rng.random() * 1e7):07d}-{int(rng.random() * 1e7):07d}")
                    amazon_ids.add(order.external_id)
                    order.order_number = order.external_id
                continue
            if spec.channel == "shopify":
                # Shopify ids are global and increasing, so one shop sees big gaps between its orders.
                ids = sorted(rng.sample(range(5_000_000_000, 6_000_000_000), len(mine)))
                for number, (order, id_) in enumerate(zip(mine, ids, strict=True), start=1001):
                    order.external_id, order.order_number = str(id_), f"#{number}"
            else:
                # WooCommerce (HPOS) ids count up, with gaps from drafts and failed checkouts.
                ids = sorted(rng.sample(range(1000, 1000 + 3 * len(mine) + 10), len(mine)))
                for order, id_ in zip(mine, ids, strict=True):
                    order.external_id = order.order_number = str(id_)
            first_seen: dict[object, None] = {}
            for order in mine:
                key = keys.get(id(order))
                if isinstance(key, tuple):
                    first_seen.setdefault(key, None)
            if spec.channel == "shopify":
                numbers = sorted(rng.sample(range(7_000_000_000_000, 8_000_000_000_000), len(first_seen)))
            else:
                numbers = list(range(2, 2 + len(first_seen)))  # WordPress user 1 is the shop admin
            customer = {key: str(n) for key, n in zip(first_seen, numbers, strict=True)}
            for order in mine:
                key = keys.get(id(order))
                order.channel_customer_id = customer[key] if isinstance(key, tuple) else key  # type: ignore[assignment]


def generate(
    *,
    seed: int = 42,
    orders: int = 3000,
    days: int = 90,
    stores: list[StoreSpec] | None = None,
    start: datetime,
    future_days: int = 30,
    defect_rate: float = 0.01,
) -> Business:
    """Generate a multichannel business and its ground truth.

    Args:
        seed: the only source of randomness; same seed and arguments give the same business.
        orders: number of order records (real sales, Shopify mirrors of Amazon orders, Amazon
            replacements and malformed records together) created in the ``days`` before ``start``;
            the future window adds the same daily rate (``len(business.orders) ==
            round(orders * (days + future_days) / days)``).
        days: days of history before ``start``.
        stores: the stores to fill (default :data:`DEFAULT_STORES`); each channel one of
            ``amazon``, ``shopify``, ``woocommerce``.
        start: the sandbox "now" at generation, timezone-aware.
        future_days: days after ``start`` in which new orders and status changes still happen.
        defect_rate: share of records that are malformed on the wire (see the module docstring).

    Returns:
        The business: stores, persons, orders sorted by ``created_at``.

    Raises:
        ValueError: on a naive ``start``, negative sizes, a rate outside [0, 1], or bad stores.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC), e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    if orders < 0 or days < 0 or future_days < 0 or not 0 <= defect_rate <= 1:
        raise ValueError("orders, days and future_days must be >= 0 and defect_rate within [0, 1]")
    specs = list(DEFAULT_STORES if stores is None else stores)
    keys = [spec.key for spec in specs]
    if not specs or len(set(keys)) != len(keys) or any(s.channel not in CHANNELS for s in specs):
        raise ValueError(f"stores need unique keys and channels among {CHANNELS}; got {keys}")
    start = start.astimezone(UTC)
    b = _Builder(seed, specs, start, days, future_days)
    orders = round(orders * (days + future_days) / days) if days else orders
    if orders == 0:
        return Business(specs, {}, [], seed, start, b.horizon)
    rng = b.rng

    # Sales first; mirrors and replacements are extra records, sized so everything adds up to ``orders``.
    total_weight = sum(s.weight for s in specs)
    eligible = sum(s.weight for i, s in enumerate(specs) if i in b.mirror_target) / total_weight
    on_amazon = sum(s.weight for s in specs if s.channel == "amazon") / total_weight
    sales = max(1, round(orders / (1 + MIRROR_RATE * eligible + REPLACEMENT_RATE * on_amazon)))
    counts = b.people(max(1, min(sales, round(orders * PERSONS_PER_ORDER))), sales)
    slots = b.slots(counts)
    last_mirror = b.horizon - timedelta(days=4)  # the import runs once the Amazon order is paid
    last_replaced = b.horizon - timedelta(days=16)
    mirror_ok = [i for i, (_, s, t) in enumerate(slots) if s in b.mirror_target and t < last_mirror]
    amazon = [i for i, (_, s, t) in enumerate(slots) if specs[s].channel == "amazon"]
    n_mirrors = min(round(MIRROR_RATE * len(mirror_ok)), orders - len(slots))
    mirrored = set(rng.sample(mirror_ok, n_mirrors))
    replace_ok = [i for i in amazon if i not in mirrored and slots[i][2] < last_replaced]
    n_replaced = min(round(REPLACEMENT_RATE * len(amazon)), len(replace_ok), orders - len(slots) - n_mirrors)
    replaced = set(rng.sample(replace_ok, n_replaced))
    repeaters = [i for i, (person, _, _) in enumerate(slots)
                 if counts[person] >= 2 and b.profiles[person].segment != "churned"] or list(range(len(slots)))
    while len(slots) + n_mirrors + n_replaced < orders:
        # Rounding left room (or the stores allow no mirrors): more sales by existing repeat buyers.
        person, store, _ = slots[rng.choice(repeaters)]
        slots.append((person, store, b._moment(rng.random(), b.profiles[person].person.country)))
    plain = [i for i in range(len(slots)) if i not in mirrored and i not in replaced]
    defective = rng.sample(plain, min(len(plain), round(defect_rate * orders)))
    kinds = [DEFECTS[k % len(DEFECTS)] for k in range(len(defective))]
    rng.shuffle(kinds)
    defect_of = dict(zip(defective, kinds, strict=True))
    for n, i in enumerate(defective):
        allowed = CHANNEL_DEFECTS.get(specs[slots[i][1]].channel)
        if allowed is not None and defect_of[i] not in allowed:
            defect_of[i] = allowed[n % len(allowed)]

    made: list[Order] = []
    keys_of: dict[int, object] = {}
    links: list[tuple[Order, Order, str]] = []
    for i, (person, store, created) in enumerate(slots):
        special = i in mirrored or i in replaced
        order, shown = b.order(person, store, created, defect=defect_of.get(i), may_cancel=not special,
                               fate=lifecycle.NORMAL if i in replaced else None)
        made.append(order)
        keys_of[id(order)] = shown.customer_key
        if i in mirrored:
            target = b.mirror_target[store]
            copy = b.mirror(order, target)
            made.append(copy)
            keys_of[id(copy)] = ("shopify", target, copy.email.lower()) if copy.email else None
            links.append((copy, order, "mirror"))
        elif i in replaced:
            extra = b.replacement(order)
            made.append(extra)
            links.append((extra, order, "related"))
    # Drop what only generation needed before sorting and numbering: a million orders make it count.
    persons = {p.person.person_id: p.person for p in b.profiles}
    b.release()
    del slots, mirror_ok, amazon, plain, repeaters, replace_ok, defect_of
    for order in made:
        # The sandbox clock stops at the horizon: later changes never happen.
        if order.versions[-1].at > b.horizon:
            order.versions = [v for v in order.versions if v.at <= b.horizon]
            assert order.versions, "every order is created within the window"
    made.sort(key=lambda o: o.created_at)  # stable: ties keep generation order
    width = max(7, len(str(len(made))))
    for n, order in enumerate(made, start=1):
        order.truth_id = f"T{n:0{width}d}"
    for child, parent, kind in links:
        if kind == "mirror":
            child.mirror_of = parent.truth_id
        else:
            child.related_to = parent.truth_id
    b.assign_ids(made, keys_of)
    return Business(specs, persons, made, seed, start, b.horizon)
