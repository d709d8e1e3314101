from tests.shopify.conftest import SHOP
def test_x():
    assert SHOP
