"""A sample storefront admin site: server-rendered HTML with a CSRF login, paged order list and detail pages.

``GET /login`` renders the form with a one-time CSRF token; ``POST /login`` checks it and the
credentials and sets a ``session`` cookie. ``/admin/orders?page=N`` lists orders newest updated first
with a last-updated column; ``/admin/orders/{id}`` shows one order in awkward markup: German amounts
(``1.234,50 €``), dates in the shop's time zone (``27.11.2026 14:05``), line items in a nested table,
an "Ausverkauft" badge inside the price cell. Admin pages without a session redirect to the login.

A malformed order (``order.defect``) renders the way a buggy shop shows it: ``bad_total`` doubles the
decimal part (``1.234,50,50 €``), ``bad_date`` an impossible order date, ``negative_quantity`` a first line
of ``-1``, ``missing_lines`` an empty items table.

Faults beyond the generic ones: ``session_expired`` (every session ends, the page redirects to the
login form) and ``layout_changed`` (the page renders with renamed CSS classes); set
``layout_changed = True`` to rename them on every page.
"""

from __future__ import annotations

import html
import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response
from sandbox.model import Order, Version

PER_PAGE = 20
STATUS_LABELS = {"pending": "Offen", "unfulfilled": "In Bearbeitung", "partially_fulfilled": "Teilweise versandt",
                 "fulfilled": "Versandt", "cancelled": "Storniert"}
PAYMENT_LABELS = {"pending": "Ausstehend", "paid": "Bezahlt", "partially_refunded": "Teilweise erstattet",
                  "refunded": "Erstattet", "voided": "Storniert"}
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF"}


def german_amount(amount: Decimal, currency: str) -> str:
    """``1234.5`` → ``1.234,50 €`` (thousands ``.``, decimal ``,``, symbol after)."""
    text = f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{text}\xa0{SYMBOLS.get(currency, currency)}"


class StorefrontEmulator(Emulator):
    """One shop's admin site over ``orders`` (mutable: tests add versions while it runs).

    Attributes:
        layout_changed: render every page with renamed CSS classes (a redesign).
        logins: successful logins so far.
    """

    name = "storefront"

    def __init__(self, orders: list[Order], *, username: str = "admin", password: str = "s3cret",
                 timezone: str = "Europe/Berlin", per_page: int = PER_PAGE,
                 now: Callable[[], datetime] = clock.now) -> None:
        super().__init__(now=now)
        self.orders = orders
        self.username, self.password = username, password
        self.zone = ZoneInfo(timezone)
        self.per_page = per_page
        self.layout_changed = False
        self.logins = 0
        self._tokens: set[str] = set()
        self._sessions: set[str] = set()
        self._state_lock = threading.Lock()
        self.route("GET", r"/login", self._login_form, "login_form")
        self.route("POST", r"/login", self._login, "login")
        self.route("GET", r"/admin/orders", self._list, "list")
        self.route("GET", r"/admin/orders/(?P<id>[^/]+)", self._detail, "detail")

    # -- helpers ---------------------------------------------------------------------------------
    def _cls(self, name: str, changed: bool) -> str:
        return f"v2-{name.replace('-', '_')}" if changed else name

    def _date(self, when: datetime, seconds: bool = False) -> str:
        return when.astimezone(self.zone).strftime("%d.%m.%Y %H:%M:%S" if seconds else "%d.%m.%Y %H:%M")

    def _page(self, title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        doc = (f"<!DOCTYPE html><html lang=\"de\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
               f"</head><body><div id=\"main\">{body}</div></body></html>")
        return Response(status, doc.encode(), {"Content-Type": "text/html; charset=utf-8", **(headers or {})})

    def _session_ok(self, req: Request) -> bool:
        cookies = dict(p.strip().split("=", 1) for p in req.headers.get("cookie", "").split(";") if "=" in p)
        with self._state_lock:
            return cookies.get("session") in self._sessions

    def _guard(self, req: Request) -> tuple[Response | None, bool]:
        """A redirect to the login when there is no session; else whether to render the changed layout."""
        if self.faults.take(req.path, {"session_expired"}) is not None:
            with self._state_lock:
                self._sessions.clear()
        if not self._session_ok(req):
            return Response(302, b"", {"Location": f"/login?next={quote(req.path)}"}), False
        changed = self.layout_changed or self.faults.take(req.path, {"layout_changed"}) is not None
        return None, changed

    def _current(self) -> list[tuple[Order, Version]]:
        now = self.now()
        current = [(o, v) for o in list(self.orders) if (v := o.version_at(now)) is not None]
        return sorted(current, key=lambda ov: (ov[1].at, ov[0].external_id), reverse=True)

    # -- routes ----------------------------------------------------------------------------------
    def _login_form(self, req: Request, match: re.Match[str]) -> Response:
        token = secrets.token_urlsafe(16)
        with self._state_lock:
            self._tokens.add(token)
        error = '<p class="login-error">Anmeldung fehlgeschlagen</p>' if req.arg("failed") else ""
        return self._page("Anmelden", (
            f"{error}<form id=\"login\" method=\"post\" action=\"/login\">"
            f"<input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">"
            f"<input type=\"hidden\" name=\"next\" value=\"{html.escape(req.arg('next') or '/admin/orders')}\">"
            "<label>Benutzer <input name=\"username\"></label><label>Passwort <input type=\"password\" name=\"password\">"
            "</label><button type=\"submit\">Anmelden</button></form>"))

    def _login(self, req: Request, match: re.Match[str]) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        with self._state_lock:
            token_ok = form.get("csrf_token") in self._tokens
            self._tokens.discard(form.get("csrf_token", ""))
        if not token_ok:
            return self._page("Fehler", "<p>CSRF-Token ungültig</p>", 403)
        if form.get("username") != self.username or form.get("password") != self.password:
            return Response(302, b"", {"Location": "/login?failed=1"})
        session = secrets.token_urlsafe(16)
        with self._state_lock:
            self._sessions.add(session)
            self.logins += 1
        target = form.get("next") or "/admin/orders"
        return Response(302, b"", {"Location": target if target.startswith("/") else "/admin/orders",
                                   "Set-Cookie": f"session={session}; Path=/; HttpOnly"})

    def _list(self, req: Request, match: re.Match[str]) -> Response:
        redirect, changed = self._guard(req)
        if redirect is not None:
            return redirect
        c = lambda name: self._cls(name, changed)  # noqa: E731
        page = max(1, int(req.arg("page") or 1))
        current = self._current()
        rows = current[(page - 1) * self.per_page: page * self.per_page]
        if not rows:
            return self._page("Bestellungen", f"<h1>Bestellungen</h1><p class=\"{c('no-orders')}\">Keine Bestellungen</p>")
        body = [f"<h1>Bestellungen</h1><table class=\"{c('orders')}\"><thead><tr><th>Nr.</th><th>Kunde</th><th>Status</th>"
                "<th>Summe</th><th>Zuletzt geändert</th></tr></thead><tbody>"]
        for order, version in rows:
            body.append(
                f"<tr class=\"{c('order-row')}\" data-id=\"{order.external_id}\">"
                f"<td class=\"{c('order-no')}\"><a href=\"/admin/orders/{order.external_id}\">{html.escape(order.order_number)}</a></td>"
                f"<td>{html.escape(order.buyer_name or '')}</td><td>{STATUS_LABELS[version.status]}</td>"
                f"<td>{german_amount(order.total, order.currency)}</td>"
                f"<td class=\"{c('updated')}\">{self._date(version.at, seconds=True)}</td></tr>")
        body.append("</tbody></table><nav class=\"pager\">")
        if page > 1:
            body.append(f"<a class=\"{c('prev')}\" href=\"/admin/orders?page={page - 1}\">‹ Zurück</a>")
        if page * self.per_page < len(current):
            body.append(f"<a class=\"{c('next')}\" href=\"/admin/orders?page={page + 1}\">Weiter ›</a>")
        body.append("</nav>")
        return self._page("Bestellungen", "".join(body))

    def _detail(self, req: Request, match: re.Match[str]) -> Response:
        redirect, changed = self._guard(req)
        if redirect is not None:
            return redirect
        c = lambda name: self._cls(name, changed)  # noqa: E731
        now = self.now()
        order = next((o for o in self.orders if o.external_id == match["id"]), None)
        version = order.version_at(now) if order else None
        if order is None or version is None:
            return self._page("Nicht gefunden", "<p>Bestellung nicht gefunden</p>", 404)
        cur = order.currency
        money = lambda amount: german_amount(amount, cur)  # noqa: E731
        esc = lambda value: html.escape(value or "")  # noqa: E731
        addr = order.ship_to
        address = "" if addr is None else (
            f"<span class=\"{c('ship-name')}\">{esc(addr.name)}</span><br><span class=\"{c('ship-line1')}\">{esc(addr.line1)}</span><br>"
            + (f"<span class=\"{c('ship-line2')}\">{esc(addr.line2)}</span><br>" if addr.line2 else "")
            + f"<span class=\"{c('ship-zip')}\">{esc(addr.postal_code)}</span> <span class=\"{c('ship-city')}\">{esc(addr.city)}</span><br>"
            f"<span class=\"{c('ship-country')}\">{esc(addr.country)}</span>")
        defect = order.defect
        lines = []
        for i, line in enumerate([] if defect == "missing_lines" else order.lines):
            quantity = -1 if defect == "negative_quantity" and i == 0 else line.quantity
            badge = f" <span class=\"badge {c('soldout')}\">Ausverkauft</span>" if i % 3 == 1 else ""
            lines.append(
                f"<tr class=\"{c('item')}\"><td class=\"{c('sku')}\">{esc(line.sku)}</td><td class=\"{c('title')}\">{esc(line.title)}</td>"
                f"<td class=\"{c('qty')}\">{quantity}</td>"
                f"<td class=\"{c('price')}\"><table class=\"price-box\"><tbody><tr><td><span class=\"{c('amount')}\">"
                f"{money(line.unit_price)}</span>{badge}</td></tr></tbody></table></td>"
                f"<td class=\"{c('line-discount')}\">{money(line.discount)}</td><td class=\"{c('line-tax')}\">{money(line.tax)}</td>"
                f"<td class=\"{c('line-total')}\">{money(line.total)}</td></tr>")
        created = "31.02.2024 25:61" if defect == "bad_date" else self._date(order.created_at)
        total = money(order.total)
        if defect == "bad_total":
            total = total.replace("\xa0", f",{total.split(',')[-1][:2]}\xa0", 1)  # 1.234,50 € -> 1.234,50,50 €
        refunded = f"<tr><th>Erstattet</th><td class=\"{c('refunded')}\">{money(version.refunded)}</td></tr>" if version.refunded else ""
        body = (
            f"<div class=\"{c('order-detail')}\" data-order-id=\"{order.external_id}\">"
            f"<h1>Bestellung <span class=\"{c('order-number')}\">{esc(order.order_number)}</span></h1>"
            f"<table class=\"{c('meta')}\"><tbody>"
            f"<tr><th>Bestellt am</th><td class=\"{c('created')}\">{created}</td></tr>"
            f"<tr><th>Zuletzt geändert</th><td class=\"{c('changed')}\">{self._date(version.at, seconds=True)}</td></tr>"
            f"<tr><th>Status</th><td><span class=\"{c('status')}\">{STATUS_LABELS[version.status]}</span></td></tr>"
            f"<tr><th>Zahlung</th><td><span class=\"{c('payment')}\">{PAYMENT_LABELS[version.payment_status]}</span></td></tr>"
            f"<tr><th>Kunde</th><td><span class=\"{c('customer-name')}\">{esc(order.buyer_name)}</span><br>"
            f"<a class=\"{c('email')}\" href=\"mailto:{esc(order.email)}\">{esc(order.email)}</a><br>"
            f"<span class=\"{c('phone')}\">{esc(order.phone)}</span></td></tr>"
            f"<tr><th>Lieferadresse</th><td class=\"{c('address')}\">{address}</td></tr></tbody></table>"
            f"<h2>Artikel</h2><table class=\"{c('items')}\"><thead><tr><th>Art.-Nr.</th><th>Artikel</th><th>Menge</th>"
            f"<th>Preis</th><th>Rabatt</th><th>MwSt.</th><th>Summe</th></tr></thead><tbody>{''.join(lines)}</tbody></table>"
            f"<table class=\"{c('totals')}\"><tbody>"
            f"<tr><th>Zwischensumme</th><td class=\"{c('subtotal')}\">{money(order.subtotal)}</td></tr>"
            f"<tr><th>Rabatt</th><td class=\"{c('discount')}\">{money(order.discount)}</td></tr>"
            f"<tr><th>Versand</th><td class=\"{c('shipping')}\">{money(order.shipping)}</td></tr>"
            f"<tr><th>MwSt.</th><td class=\"{c('tax')}\">{money(order.tax)}</td></tr>"
            f"<tr><th>Gesamt</th><td class=\"{c('total')}\"><strong>{total}</strong></td></tr>"
            f"{refunded}</tbody></table></div>")
        return self._page(f"Bestellung {order.order_number}", body)
