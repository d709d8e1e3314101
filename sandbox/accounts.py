"""How each channel shows a person: one account per store, relay e-mails, guest checkouts and masked PII."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sandbox import noise
from sandbox.business import StoreSpec
from sandbox.model import Address
from sandbox.people import Profile

# How likely a person signs up to a store with each kind of address they own.
_EMAIL_KIND_WEIGHT = {"main": 0.55, "work": 0.15, "alias": 0.12, "typo": 0.08, "upper": 0.10}
_RELAY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class Shown:
    """The identity fields of one order as its channel shows them."""

    email: str | None
    phone: str | None
    name: str | None
    ship_to: Address | None
    customer_key: tuple[object, ...] | str | None  # resolved to a channel customer id once ids are known


@dataclass(frozen=True, slots=True)
class _Account:
    email: str
    phone: str | None
    name: str
    address: Address


class Accounts:
    """Renders people per store, stable per (person, store) as real accounts are, with some per-order drift."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._accounts: dict[tuple[int, int], _Account] = {}
        self._relays: set[str] = set()

    def _email(self, profile: Profile) -> str:
        variants = profile.variants
        if len(variants) == 1:
            return variants[0][1]
        weights = [_EMAIL_KIND_WEIGHT[kind] for kind, _ in variants]
        return self._rng.choices(variants, weights)[0][1]

    def _phone(self, profile: Profile, store: StoreSpec) -> str:
        phone = self._rng.choice(profile.phone_parts)
        return noise.format_phone(self._rng, phone, store.country, local=True)

    def _account(self, profile: Profile, store_index: int, store: StoreSpec) -> _Account:
        key = (profile.index, store_index)
        account = self._accounts.get(key)
        if account is None:
            rng = self._rng
            person = profile.person
            name = noise.render_name(rng, person.first_name, person.last_name, person.country)
            phone = self._phone(profile, store) if rng.random() < 0.75 else None
            account = _Account(self._email(profile), phone, name, noise.render_address(rng, profile.home, name))
            self._accounts[key] = account
        return account

    def relay(self, profile: Profile, seller: str) -> str:
        """The buyer's Amazon relay address for ``seller`` (stable: one per buyer per seller)."""
        relay = profile.person.relay_emails.get(seller)
        if relay is None:
            while relay is None or relay in self._relays:
                local = "".join(self._rng.choices(_RELAY_CHARS, k=self._rng.choice((13, 14, 15, 16))))
                relay = f"{local}@marketplace.amazon.com"
            self._relays.add(relay)
            profile.person.relay_emails[seller] = relay
        return relay

    def show(self, profile: Profile, store_index: int, store: StoreSpec, *, masked: bool = False,
             marketplace: bool = False) -> Shown:
        """The identity one new order of ``profile`` in ``store`` carries."""
        rng = self._rng
        account = self._account(profile, store_index, store)
        address = account.address if rng.random() < 0.85 else noise.render_address(rng, profile.home, account.name)
        if store.channel == "amazon":
            if masked:
                # Without the PII role Amazon still gives city, region, postal code and country.
                home = profile.home
                return Shown(None, None, None, Address("", "", None, home.city[0], home.region, home.postal[0],
                                                       home.country), None)
            phone = account.phone if not marketplace and rng.random() < 0.7 else None
            return Shown(self.relay(profile, store.seller_id or store.key), phone, account.name, address, None)
        if store.channel == "woocommerce" and rng.random() < 0.3:
            # Guest checkout: everything typed afresh, customer_id 0.
            person = profile.person
            name = noise.render_name(rng, person.first_name, person.last_name, person.country)
            return Shown(self._email(profile), self._phone(profile, store) if rng.random() < 0.95 else None, name,
                         noise.render_address(rng, profile.home, name), "0")
        email = account.email if rng.random() < 0.9 else self._email(profile)
        if store.channel == "woocommerce":
            return Shown(email, account.phone or self._phone(profile, store), account.name, address,
                         ("woo", store_index, profile.index))
        # Shopify keys customers by e-mail (case-insensitive): a new address makes a new customer.
        return Shown(email, account.phone, account.name, address, ("shopify", store_index, email.lower()))
