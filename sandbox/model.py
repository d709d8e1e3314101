"""The sandbox business: people, their orders on each channel, and how each order changes over time.

The generator (sandbox/generator.py) builds a :class:`Business`; emulators render each order's
version that is current at the sandbox clock in their channel's wire format; the tests compare
what orderhub made of it with :meth:`Business.truth`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class Address:
    """A postal address as one channel shows it (may carry abbreviations and typos)."""

    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None  # state/province code where the country has one
    postal_code: str
    country: str  # ISO 3166-1 alpha-2


@dataclass
class Person:
    """A real person (ground truth): one customer_id should come out per person."""

    person_id: str
    first_name: str
    last_name: str
    emails: list[str]  # first is the main one; others are work/typo/alias variants
    phones: list[str]  # E.164 truth; channels show them in local formats
    address: Address
    country: str
    segment: str = "one_time"  # what the generator intended: one_time | repeat | vip | churned
    relay_emails: dict[str, str] = field(default_factory=dict)  # Amazon seller_id -> this buyer's relay address


@dataclass(frozen=True)
class Line:
    """An order line (money in the order's currency)."""

    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal("0")
    tax: Decimal = Decimal("0")

    @property
    def total(self) -> Decimal:
        """quantity * unit_price - discount + tax."""
        return self.quantity * self.unit_price - self.discount + self.tax


@dataclass(frozen=True)
class Version:
    """The state of an order from ``at`` on. ``at`` is the channel's updated_at for this version."""

    at: datetime
    status: str  # canonical: pending|unfulfilled|partially_fulfilled|fulfilled|cancelled
    payment_status: str  # canonical: pending|paid|partially_refunded|refunded|voided
    refunded: Decimal = Decimal("0")
    tracking_number: str | None = None
    carrier: str | None = None  # who carries tracking_number (Shopify trackingCompany names: "USPS", "DHL"...)


@dataclass
class Order:
    """One order on one channel and store, with its whole history of versions."""

    truth_id: str  # unique in the business, e.g. "T0000123"
    person_id: str | None  # None for a gift order whose buyer is unknown to the truth
    channel: str  # amazon | shopify | woocommerce
    store: str  # store key as in orderhub.toml
    external_id: str  # the channel's own id (Amazon "123-1234567-1234567", Shopify numeric, Woo numeric)
    order_number: str  # what the customer sees
    created_at: datetime
    currency: str
    lines: list[Line]
    shipping: Decimal
    order_discount: Decimal
    # Identity as this channel shows it (noisy: typos, formats, relay e-mails, masking).
    email: str | None
    phone: str | None  # as the channel shows it, any format
    buyer_name: str | None
    ship_to: Address | None
    channel_customer_id: str | None  # Shopify customer id / Woo customer id (0 = guest) / None
    fulfilled_by: str = "merchant"  # merchant | marketplace (Amazon AFN/FBA)
    ship_by: datetime | None = None
    pii_masked: bool = False  # Amazon without PII roles: buyer e-mail/name/address withheld
    mirror_of: str | None = None  # truth_id of the original when this is an imported copy
    related_to: str | None = None  # truth_id of the original of a replacement order
    defect: str | None = None  # why this record is malformed on the wire (None = clean)
    versions: list[Version] = field(default_factory=list)

    @property
    def order_id(self) -> str:
        """The canonical order id orderhub must produce."""
        return f"{self.channel}:{self.store}:{self.external_id}"

    @property
    def subtotal(self) -> Decimal:
        """Sum of line quantity * unit_price."""
        return sum((line.quantity * line.unit_price for line in self.lines), Decimal("0"))

    @property
    def tax(self) -> Decimal:
        """Sum of line taxes."""
        return sum((line.tax for line in self.lines), Decimal("0"))

    @property
    def discount(self) -> Decimal:
        """Line discounts plus the order-level discount."""
        return sum((line.discount for line in self.lines), Decimal("0")) + self.order_discount

    @property
    def total(self) -> Decimal:
        """subtotal - discount + shipping + tax."""
        return self.subtotal - self.discount + self.shipping + self.tax

    def version_at(self, when: datetime) -> Version | None:
        """The version current at ``when`` (None before the order exists)."""
        current = None
        for version in self.versions:
            if version.at <= when:
                current = version
            else:
                break
        return current
