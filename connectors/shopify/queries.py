"""The Admin GraphQL documents the Shopify connector sends (field names as in shopify.dev's Order object)."""

from __future__ import annotations

# One page of orders changed in a window, oldest change first, with everything the pipeline reads.
# Nested connections are fetched in the same query: ``lineItems(first: 100)`` covers all but a few
# extraordinary orders; the pipeline quarantines an order whose ``lineItems.pageInfo.hasNextPage``
# is true rather than load it with lines missing. ``refunds`` and ``fulfillments`` are plain lists.
# https://shopify.dev/docs/api/admin-graphql/latest/queries/orders
LINE_ITEMS_PER_ORDER = 100

ORDERS = """
query Orders($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id legacyResourceId name email phone
        createdAt updatedAt processedAt cancelledAt cancelReason closedAt
        currencyCode presentmentCurrencyCode
        displayFinancialStatus displayFulfillmentStatus
        sourceName tags note
        customAttributes { key value }
        customer { id legacyResourceId email phone firstName lastName displayName }
        shippingAddress { ...Address }
        billingAddress { ...Address }
        subtotalPriceSet { ...Money }
        totalDiscountsSet { ...Money }
        totalShippingPriceSet { ...Money }
        totalTaxSet { ...Money }
        totalPriceSet { ...Money }
        totalRefundedSet { ...Money }
        refunds { id legacyResourceId createdAt totalRefundedSet { ...Money } }
        fulfillments { id legacyResourceId status createdAt trackingInfo { company number url } }
        lineItems(first: LINES) {
          pageInfo { hasNextPage }
          nodes {
            id name title sku variantTitle quantity
            originalUnitPriceSet { ...Money }
            totalDiscountSet { ...Money }
            taxLines { title rate priceSet { ...Money } }
          }
        }
      }
    }
  }
}

fragment Money on MoneyBag {
  shopMoney { amount currencyCode }
  presentmentMoney { amount currencyCode }
}

fragment Address on MailingAddress {
  name firstName lastName company address1 address2 city province provinceCode zip country countryCodeV2 phone
}
""".replace("LINES", str(LINE_ITEMS_PER_ORDER))

SHOP = "query Shop { shop { name myshopifyDomain currencyCode ianaTimezone } }"
