"""How an order changes over days on each channel: payment, shipments with tracking, cancellations, refunds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.catalog import money
from sandbox.model import Version

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# Fates, drawn once per order: most ship; ~3% are cancelled, ~4% refunded after delivery.
NORMAL, CANCEL, REFUND_PARTIAL, REFUND_FULL = "normal", "cancel", "refund_partial", "refund_full"

_UPPER = "ABCDEFGHJKLMNPRSTUVWXYZ"
_ALNUM = _UPPER + "0123456789"


def fate(rng: random.Random, *, may_cancel: bool = True) -> str:
    """The fate of one order (cancellations only where the caller allows them)."""
    roll = rng.random()
    if roll < 0.03:
        return CANCEL if may_cancel else NORMAL
    if roll < 0.055:
        return REFUND_PARTIAL
    if roll < 0.07:
        return REFUND_FULL
    return NORMAL


def _digits(rng: random.Random, n: int) -> str:
    # random() per 9 digits: randrange on big ints is the generator's hottest call otherwise.
    out = ""
    while n > 0:
        k = min(n, 9)
        out += f"{int(rng.random() * 10**k):0{k}d}"
        n -= k
    return out


def tracking(rng: random.Random, country: str, marketplace: bool) -> tuple[str, str]:
    """(carrier, tracking number) in the carrier's real number format for a shipment to ``country``."""
    if marketplace:
        return "Amazon Logistics", f"TBA{_digits(rng, 12)}"
    roll = rng.random()
    if country == "US":
        if roll < 0.5:
            return "USPS", f"9400{_digits(rng, 18)}"
        if roll < 0.8:
            return "UPS", f"1Z{''.join(rng.choices(_ALNUM, k=6))}03{_digits(rng, 8)}"
        return "FedEx", _digits(rng, 12)
    if country == "CA":
        return ("Canada Post", _digits(rng, 16)) if roll < 0.7 else ("Purolator", _digits(rng, 12))
    if country == "DE":
        return ("DHL", f"00340434{_digits(rng, 12)}") if roll < 0.7 else ("Hermes", _digits(rng, 14))
    if country == "GB":
        if roll < 0.6:
            return "Royal Mail", f"{''.join(rng.choices(_UPPER, k=2))}{_digits(rng, 9)}GB"
        return "DPD", _digits(rng, 14)
    return "DHL Express", _digits(rng, 10)


def _after(rng: random.Random, t: datetime, low: timedelta, high: timedelta) -> datetime:
    """A moment between ``low`` and ``high`` after ``t``, to the second."""
    return t + low + timedelta(seconds=int(rng.random() * (high - low).total_seconds()))


def life_cycle(
    rng: random.Random,
    *,
    channel: str,
    created: datetime,
    total: Decimal,
    line_totals: list[Decimal],
    currency: str,
    ship_country: str,
    marketplace: bool,
    order_fate: str,
) -> list[Version]:
    """Every version of one order from creation on, with strictly increasing ``at``.

    Amazon orders mostly start ``Pending`` until payment is authorized (minutes, sometimes days);
    Shopify sometimes waits for a manual payment; WooCommerce orders paid by bank transfer sit
    ``on-hold``. Merchant orders ship within 1-3 days (a few late), FBA within a day; multi-line
    orders sometimes ship in two parcels. Refunds come 3-30 days after delivery. Amazon charges
    on shipment, so an Amazon cancellation voids; a paid Shopify/Woo order is refunded on cancel.
    Amazon orders are never refunded here: their refunds are not on the Orders API.
    """
    versions: list[Version] = []
    t = created
    # An unpaid order is canonically pending on every channel (Shopify: unfulfilled + financial PENDING,
    # as pipelines/shopify.py maps it).
    pending = {"amazon": 0.85, "shopify": 0.08, "woocommerce": 0.25}.get(channel, 0.1)
    if rng.random() < pending:
        versions.append(Version(t, "pending", "pending"))
        if rng.random() < 0.03:
            t = _after(rng, t, 12 * HOUR, 3 * DAY)  # payment verification or bank transfer takes days
        elif channel == "amazon":
            t = _after(rng, t, MINUTE, 2 * HOUR)
        else:
            t = _after(rng, t, 10 * MINUTE, 2 * DAY)
        if order_fate == CANCEL and rng.random() < 0.35:
            versions.append(Version(t, "cancelled", "voided"))
            return versions
    versions.append(Version(t, "unfulfilled", "paid"))
    if order_fate == CANCEL:
        t = _after(rng, t, 30 * MINUTE, 30 * HOUR)
        if channel == "amazon":
            versions.append(Version(t, "cancelled", "voided"))
        else:
            versions.append(Version(t, "cancelled", "refunded", total))
        return versions
    if marketplace:
        t = _after(rng, t, 4 * HOUR, 30 * HOUR)
    elif rng.random() < 0.04:
        t = _after(rng, t, 2 * DAY + 12 * HOUR, 5 * DAY)  # late: past Amazon's ship-by, a real SLA breach
    else:
        t = _after(rng, t, 8 * HOUR, 3 * DAY)
    carrier, number = tracking(rng, ship_country, marketplace)
    if len(line_totals) > 1 and rng.random() < 0.15:
        versions.append(Version(t, "partially_fulfilled", "paid", tracking_number=number, carrier=carrier))
        t = _after(rng, t, 12 * HOUR, 2 * DAY)
        carrier, number = tracking(rng, ship_country, marketplace)
    versions.append(Version(t, "fulfilled", "paid", tracking_number=number, carrier=carrier))
    # Amazon reports refunds only in the Finances API: an Amazon order stays Shipped on the Orders
    # wire (DESIGN status mapping), so the truth cannot hold a refund nobody could observe.
    if order_fate in (REFUND_PARTIAL, REFUND_FULL) and total > 0 and channel != "amazon":
        t = _after(rng, t, 3 * DAY, 30 * DAY)
        if order_fate == REFUND_FULL:
            versions.append(Version(t, "fulfilled", "refunded", total, number, carrier))
        else:
            if len(line_totals) > 1:
                amount = rng.choice(line_totals)  # one line returned
            else:
                amount = money(total * Decimal(rng.choice(("0.1", "0.2", "0.25", "0.5"))), currency)
            if 0 < amount < total:
                versions.append(Version(t, "fulfilled", "partially_refunded", amount, number, carrier))
    return versions
