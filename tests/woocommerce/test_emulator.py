"""The WooCommerce emulator speaks REST v3 like a real shop: record shape, paging, filters, OAuth 1.0a."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests

from connectors.woocommerce.auth import OAuth1QuerySigner
from orderhub import clock
from sandbox.emulators.woocommerce import render_order
from tests.woocommerce.helpers import SITES, WooEnv, load_fixture, make_order

DAY = timedelta(days=1)


def signed_get(env: WooEnv, path: str, params: dict[str, Any] | None = None, *, store: str = "shop-a",
               secret: str | None = None, now: Any = None) -> requests.Response:
    ck, cs = SITES[store]
    signer = OAuth1QuerySigner(ck, secret or cs, now=now or clock.now)
    return requests.get(f"{env.server.url}/{store}/wp-json/wc/v3{path}", params=params or {}, auth=signer, timeout=5)


def shop(now: datetime, n: int = 25) -> list:
    start = now - 3 * DAY
    orders = [make_order(i, start + timedelta(hours=i), versions=[(timedelta(0), "unfulfilled", "paid")])
              for i in range(n)]
    orders.append(make_order(99, now + DAY))  # not created yet
    return orders


def keys_and_types(value: Any) -> Any:
    """The shape of a JSON value: dict keys in order with their shapes, the first list element's shape."""
    if isinstance(value, dict):
        return {k: keys_and_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys_and_types(value[0])] if value else []
    return type(value).__name__


def test_rendered_record_has_the_fixture_shape() -> None:
    now = clock.now()
    h = timedelta(hours=1)
    order = make_order(1, now - DAY, customer="26", versions=[(0 * h, "unfulfilled", "paid"), (h, "fulfilled", "paid"),
                                                             (2 * h, "fulfilled", "partially_refunded")],
                       refunded={2: Decimal("5.00")})
    rendered = render_order(order, order.versions[-1], site_url="http://127.0.0.1:1/shop-a")
    listed = json.loads(load_fixture("list_orders.v3.example.json"))[1]  # 723: completed, customer, refunds
    shape, want = keys_and_types(rendered), keys_and_types(listed)
    assert list(shape) == list(want)  # the same fields in the same order
    for key in ("billing", "shipping", "refunds", "shipping_lines", "meta_data"):
        assert shape[key] == want[key] or (key == "meta_data" and shape[key] == []), key
    retrieve = keys_and_types(json.loads(load_fixture("retrieve_order.v3.example.json")))  # 727: taxed lines
    assert shape["line_items"][0] == retrieve["line_items"][0] | {"meta_data": []}
    assert shape["tax_lines"] == retrieve["tax_lines"]
    for key, kind in want.items():  # scalar types agree wherever neither side is null
        if isinstance(kind, str) and "NoneType" not in (kind, shape[key]):
            assert shape[key] == kind, key
    assert set(rendered["_links"]) == {"self", "collection", "customer"}
    [coupon] = rendered["coupon_lines"]  # the line discount came from a coupon; fields as documented
    assert list(coupon) == ["id", "code", "discount", "discount_tax", "meta_data"] and coupon["discount"] == "1.00"
    assert rendered["refunds"][0]["total"] == "-5.00"  # negative, as WooCommerce writes refunds
    assert (rendered["status"], rendered["customer_id"], rendered["created_via"]) == ("completed", 26, "checkout")
    # Money as the wire writes it, dates in both zones, and the same bytes every time.
    assert (rendered["total"], rendered["cart_tax"], rendered["discount_total"]) == ("41.52", "2.58", "1.00")
    local = render_order(order, order.versions[-1], site_url="x", zone=ZoneInfo("Europe/London"))
    assert local["date_created_gmt"] == rendered["date_created_gmt"]
    assert json.dumps(rendered) == json.dumps(render_order(order, order.versions[-1], site_url="http://127.0.0.1:1/shop-a"))


def test_paging_headers_and_links(woo, now) -> None:
    env: WooEnv = woo(shop(now, 25))
    resp = signed_get(env, "/orders", {"per_page": 10, "page": 2, "orderby": "id", "order": "asc"})
    assert resp.status_code == 200
    assert (resp.headers["X-WP-Total"], resp.headers["X-WP-TotalPages"]) == ("25", "3")
    assert [r["id"] for r in resp.json()] == list(range(1010, 1020))
    link = resp.headers["Link"]
    assert 'page=1' in link and 'rel="prev"' in link and 'page=3' in link and 'rel="next"' in link
    assert "oauth" not in link
    last = signed_get(env, "/orders", {"per_page": 10, "page": 3})
    assert len(last.json()) == 5 and 'rel="next"' not in last.headers["Link"]
    beyond = signed_get(env, "/orders", {"per_page": 10, "page": 9})
    assert beyond.status_code == 200 and beyond.json() == []
    offset = signed_get(env, "/orders", {"per_page": 3, "offset": 4, "orderby": "id", "order": "asc"})
    assert [r["id"] for r in offset.json()] == [1004, 1005, 1006]


def test_default_order_is_newest_first_and_per_page_is_capped(woo, now) -> None:
    env: WooEnv = woo(shop(now, 25))
    default = signed_get(env, "/orders")
    assert len(default.json()) == 10 and default.json()[0]["id"] == 1024  # orderby=date, order=desc
    too_many = signed_get(env, "/orders", {"per_page": 101})
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"
    assert "per_page" in too_many.json()["data"]["params"]
    assert signed_get(env, "/orders", {"orderby": "price"}).status_code == 400
    assert signed_get(env, "/orders", {"modified_after": "yesterday"}).status_code == 400


def test_date_and_status_filters(woo, now) -> None:
    orders = shop(now, 25)
    orders[3].versions.append(orders[3].versions[0].__class__(now - DAY, "fulfilled", "paid"))
    env: WooEnv = woo(orders)
    start = now - 3 * DAY
    gmt = {"dates_are_gmt": "true", "per_page": 100}
    after = signed_get(env, "/orders", {**gmt, "after": (start + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%S")})
    assert sorted(r["id"] for r in after.json()) == list(range(1021, 1025))  # created strictly after
    local = (start + timedelta(hours=20)).astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M:%S")
    assert signed_get(env, "/orders", {"per_page": 100, "after": local}).headers["X-WP-Total"] == "4"
    modified = signed_get(env, "/orders", {**gmt, "modified_after": (now - 2 * DAY).strftime("%Y-%m-%dT%H:%M:%S")})
    ids = sorted(r["id"] for r in modified.json())
    assert 1003 in ids and 1002 not in ids
    completed = signed_get(env, "/orders", {"status": "completed"})
    assert [r["id"] for r in completed.json()] == [1003]
    assert completed.json()[0]["date_modified_gmt"] == (now - DAY).strftime("%Y-%m-%dT%H:%M:%S")


def test_single_order(woo, now) -> None:
    env: WooEnv = woo(shop(now, 3))
    one = signed_get(env, "/orders/1001")
    assert one.status_code == 200 and one.json()["id"] == 1001
    assert one.json()["_links"]["self"][0]["href"].endswith("/shop-a/wp-json/wc/v3/orders/1001")
    assert one.content == signed_get(env, "/orders/1001").content  # deterministic rendering
    missing = signed_get(env, "/orders/1099")  # exists in the truth, created tomorrow
    assert missing.status_code == 404 and missing.json()["code"] == "woocommerce_rest_shop_order_invalid_id"


def test_authentication_is_enforced_like_woocommerce_over_http(woo, now) -> None:
    env: WooEnv = woo(shop(now, 3))
    url = f"{env.server.url}/shop-a/wp-json/wc/v3/orders"
    anonymous = requests.get(url, timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "woocommerce_rest_cannot_view"
    basic = requests.get(url, auth=SITES["shop-a"], timeout=5)  # ignored without TLS, as on a real shop
    assert basic.status_code == 401 and basic.json()["code"] == "woocommerce_rest_cannot_view"
    wrong = signed_get(env, "/orders", secret="cs_wrong")
    assert wrong.status_code == 401 and wrong.json()["code"] == "woocommerce_rest_authentication_error"
    assert "signature" in wrong.json()["message"]
    stale = signed_get(env, "/orders", now=lambda: clock.now() - timedelta(minutes=20))
    assert stale.status_code == 401 and stale.json()["message"] == "Invalid timestamp."
    other_shop = signed_get(env, "/orders", store="shop-b", secret=SITES["shop-a"][1])
    assert other_shop.status_code == 401
    prepared = requests.Request("GET", url, params={"per_page": 1},
                                auth=OAuth1QuerySigner(*SITES["shop-a"])).prepare()
    with requests.Session() as session:
        assert session.send(prepared, timeout=5).status_code == 200
        replay = session.send(prepared, timeout=5)
    assert replay.status_code == 401 and "nonce" in replay.json()["message"]
    assert requests.get(f"{env.server.url}/nope/wp-json/wc/v3/orders", timeout=5).status_code == 404


def test_hmac_sha256_is_accepted_too(woo, now) -> None:
    import base64
    import hashlib
    import hmac

    from connectors.woocommerce.auth import signature_base_string

    env: WooEnv = woo(shop(now, 2))
    ck, cs = SITES["shop-a"]
    url = f"{env.server.url}/shop-a/wp-json/wc/v3/orders"
    params = [("per_page", "5"), ("oauth_consumer_key", ck), ("oauth_timestamp", str(int(clock.now().timestamp()))),
              ("oauth_nonce", "n256"), ("oauth_signature_method", "HMAC-SHA256")]
    base = signature_base_string("GET", url, params)
    sig = base64.b64encode(hmac.new(f"{cs}&".encode(), base.encode(), hashlib.sha256).digest()).decode()
    resp = requests.get(url, params=[*params, ("oauth_signature", sig)], timeout=5)
    assert resp.status_code == 200 and len(resp.json()) == 2
