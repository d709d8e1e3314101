"""What the sandbox merchant sells, and at which prices, taxes and shipping fees in each currency."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

# ISO 4217 minor units of the currencies whose exponent is not 2.
_EXPONENT = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}

# Units of each currency per US dollar: only to derive plausible price points, never to convert money.
_PER_USD = {
    "USD": 1, "CAD": 1.37, "EUR": 0.92, "GBP": 0.79, "AUD": 1.52, "NZD": 1.65, "JPY": 151, "MXN": 17.1,
    "CHF": 0.9, "SEK": 10.6, "NOK": 10.7, "DKK": 6.9, "PLN": 4.0, "BRL": 5.0, "INR": 83, "SGD": 1.35,
}

# Countries whose shops quote prices with VAT included (Shopify `taxesIncluded`); the model is
# tax-exclusive (line total = qty * unit_price - discount + tax), so their net unit price is derived.
TAX_INCLUDED = frozenset({"DE", "GB", "FR", "IT", "ES", "NL", "AT", "BE", "IE", "PL", "SE", "DK", "AU", "NZ", "JP"})

# Combined state + average local sales tax, rounded (https://taxfoundation.org/data/all/state/sales-taxes/);
# Amazon collects it as marketplace facilitator, Shopify/Woo merchants by nexus.
_US_TAX = {
    "CA": "0.0825", "NY": "0.08875", "TX": "0.0825", "WA": "0.101", "IL": "0.1025", "FL": "0.07", "GA": "0.074",
    "MA": "0.0625", "PA": "0.06", "CO": "0.0775", "AZ": "0.084", "NV": "0.0823", "MN": "0.0749", "MI": "0.06",
    "TN": "0.0955", "NC": "0.0699", "UT": "0.0719", "DC": "0.06", "MD": "0.06", "OH": "0.0724", "NM": "0.0762",
    "HI": "0.045", "OR": "0", "MT": "0", "NH": "0", "DE": "0", "AK": "0",
}
# GST/HST (+ QST) by province (https://www.canada.ca/en/revenue-agency/services/tax/businesses/topics/gst-hst-businesses/charge-collect-which-rate.html).
_CA_TAX = {"ON": "0.13", "QC": "0.14975", "BC": "0.12", "AB": "0.05", "NS": "0.15", "MB": "0.12", "SK": "0.11",
           "NB": "0.15", "NL": "0.15", "PE": "0.15"}
# Standard VAT rates (https://taxation-customs.ec.europa.eu/...vat-rates_en; GOV.UK for GB).
_VAT = {"DE": "0.19", "GB": "0.20", "FR": "0.20", "IT": "0.22", "ES": "0.21", "NL": "0.21", "AT": "0.20",
        "BE": "0.21", "IE": "0.23", "PL": "0.23", "SE": "0.25", "DK": "0.25", "AU": "0.10", "NZ": "0.15", "JP": "0.10"}

# (sku stem, title, price in USD, variants); a home-and-outdoor brand, titles with a little Unicode.
_PRODUCTS: list[tuple[str, str, float, tuple[str, ...]]] = [
    ("BTL", "Insulated Water Bottle 750 ml", 29.0, ("Sage", "Slate", "Coral", "Sand")),
    ("MUG", "Café Crème Mug", 16.0, ("White", "Black")),
    ("SOK", "Merino Wool Socks (3-pack)", 24.0, ("S", "M", "L")),
    ("TOT", "Canvas Tote Bag", 19.0, ("Natural", "Navy")),
    ("LMP", "Rechargeable Camping Lantern", 45.0, ("Default",)),
    ("BLK", "Picnic Blanket – Waterproof", 59.0, ("Red Check", "Green Check")),
    ("KNF", "Pocket Knife Ø 8 cm", 38.0, ("Oak", "Walnut")),
    ("TNT", "Ultralight Tent 2P", 249.0, ("Default",)),
    ("SLP", "Down Sleeping Bag −5 °C", 189.0, ("Regular", "Long")),
    ("HAT", "Sun Hat", 27.0, ("S/M", "L/XL")),
    ("GLV", "Fleece Gloves", 22.0, ("S", "M", "L", "XL")),
    ("CHR", "Folding Camp Chair", 69.0, ("Olive", "Charcoal")),
    ("STV", "Piñon Camp Stove", 89.0, ("Default",)),
    ("PAN", "Cast Iron Skillet 26 cm", 54.0, ("Default",)),
    ("CUP", "Enamel Cup Set (4)", 32.0, ("Cream", "Blue")),
    ("BKP", "Daypack 22 L", 79.0, ("Black", "Rust", "Forest")),
    ("RNC", "Rain Jacket", 129.0, ("XS", "S", "M", "L", "XL")),
    ("HDL", "Headlamp 400 lm", 35.0, ("Default",)),
    ("MAP", "Trail Map Set – Alpen & Jura", 18.0, ("Default",)),
    ("BWL", "Müsli Bowl", 14.0, ("Stone", "Sky")),
    ("TWL", "Quick-dry Towel", 25.0, ("M", "L")),
    ("FLK", "Hip Flask 200 ml", 21.0, ("Steel", "Copper")),
    ("CRD", "Gift Card", 50.0, ("Default",)),
    ("HMK", "Hammock with Straps", 64.0, ("Teal", "Orange")),
    ("CLR", "Soft Cooler 20 L", 99.0, ("Grey", "Navy")),
    ("PLT", "Bamboo Plate Set", 28.0, ("Default",)),
    ("BNC", "Trekking Poles (pair)", 84.0, ("Default",)),
    ("SNK", "Trail Snack Box", 12.0, ("Sweet", "Salty")),
    ("CMP", "Compass Pro", 31.0, ("Default",)),
    ("SCF", "Alpaca Scarf", 49.0, ("Oatmeal", "Charcoal", "Rosé")),
]


@dataclass(frozen=True)
class Product:
    """One sellable variant: SKU, titles as each channel shows them, price in US dollars."""

    sku: str
    name: str
    variant: str
    usd: float

    def title(self, channel: str) -> str:
        """The line title as ``channel`` shows it (Amazon lists long titles with the brand first)."""
        suffix = "" if self.variant == "Default" else self.variant
        if channel == "amazon":
            return f"Acme {self.name}, {suffix}" if suffix else f"Acme {self.name}"
        if channel == "woocommerce":
            return f"{self.name} – {suffix}" if suffix else self.name
        return f"{self.name} - {suffix}" if suffix else self.name


def quantum(currency: str) -> Decimal:
    """The minor unit of ``currency`` as a Decimal exponent (``Decimal("0.01")`` for USD)."""
    return Decimal(1).scaleb(-_EXPONENT.get(currency, 2))


def money(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded half-up to ``currency``'s minor unit."""
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


@lru_cache(maxsize=64)
def zero(currency: str) -> Decimal:
    """Zero in ``currency``'s minor unit (``0.00``), one shared object: millions of orders carry it."""
    return money(Decimal(0), currency)


@lru_cache(maxsize=64)
def price_point(usd: float, currency: str) -> Decimal:
    """A shelf price in ``currency`` for a US-dollar price: charm-rounded (29.99, 27.95, 2980)."""
    value = usd * _PER_USD.get(currency, 1.0)
    if _EXPONENT.get(currency, 2) == 0:
        return Decimal(max(10, round(value / 10) * 10 - 20))
    whole = max(1, round(value))
    cents = "0.95" if currency in ("EUR", "CHF") and whole % 2 else "0.99"
    return money(Decimal(whole - 1) + Decimal(cents), currency)


def scaled(usd: float, currency: str) -> Decimal:
    """A round amount (fees, thresholds) in ``currency`` for a US-dollar amount."""
    return money(Decimal(str(usd * _PER_USD.get(currency, 1.0))), currency)


def tax_rate(store_country: str, ship_country: str, region: str | None) -> Decimal:
    """Sales tax or VAT the store charges for a shipment; exports outside the store's country are zero-rated."""
    if ship_country != store_country:
        return Decimal(0)
    if ship_country == "US":
        return Decimal(_US_TAX.get(region or "", "0.06"))
    if ship_country == "CA":
        return Decimal(_CA_TAX.get(region or "", "0.05"))
    return Decimal(_VAT.get(ship_country, "0"))


@lru_cache(maxsize=16)
def catalog(seed: int) -> tuple[tuple[Product, ...], tuple[float, ...]]:
    """Every variant and cumulative popularity weights (Zipf over a seeded shuffle: a few bestsellers)."""
    products = [
        Product(f"ACM-{stem}-{variant.upper().replace(' ', '').replace('/', '')[:4] if variant != 'Default' else 'STD'}",
                name, variant, usd)
        for stem, name, usd, variants in _PRODUCTS
        for variant in variants
    ]
    rng = random.Random(f"catalog:{seed}")
    rng.shuffle(products)
    cumulative, total = [], 0.0
    for rank in range(len(products)):
        total += 1.0 / (rank + 1) ** 0.9
        cumulative.append(total)
    return tuple(products), tuple(cumulative)
