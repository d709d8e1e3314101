"""The Admin GraphQL documents the Shopify connector sends (field names as in shopify.dev's Order object)."""

from __future__ import annotations

# One page of orders changed in a window, oldest change first, with everything the pipeline reads.
# Nested connections are fetched in the same query: ``lineItems(first: 100)`` covers all but a few
# extraordinary orders; the pipeline quarantines an order whose ``lineItems.pageInfo.hasNextPage``
# is true rather than load it with lines missing. ``refunds`` and ``fulfillments`` are plain lists.
# https://shopify.dev/docs/api/admin-graphql/latest/queries/orders
LINE_ITEMS_PER_ORDER = 100

_ORDER_FIELDS = """
        id legacyResourceId name email phone
        createdAt updatedAt processedAt cancelledAt cancelReason closedAt
        currencyCode presentmentCurrencyCode
        displayFinancialStatus displayFulfillmentStatus
        sourceName tags note
        customAttributes { key value }
        customer { id legacyResourceId email phone firstName lastName displayName tags }
        shippingAddress { ...Address }
        billingAddress { ...Address }
        subtotalPriceSet { ...Money }
        totalDiscountsSet { ...Money }
        totalShippingPriceSet { ...Money }
        totalTaxSet { ...Money }
        totalPriceSet { ...Money }
        totalRefundedSet { ...Money }
        refunds { id legacyResourceId createdAt totalRefundedSet { ...Money } }
        fulfillments { id legacyResourceId status createdAt trackingInfo { company number url } }"""

_LINE_FIELDS = """
            id name title sku variantTitle quantity
            originalUnitPriceSet { ...Money }
            totalDiscountSet { ...Money }
            taxLines { title rate priceSet { ...Money } }"""

_FRAGMENTS = """
fragment Money on MoneyBag {
  shopMoney { amount currencyCode }
  presentmentMoney { amount currencyCode }
}

fragment Address on MailingAddress {
  name firstName lastName company address1 address2 city province provinceCode zip country countryCodeV2 phone
}
"""

ORDERS = f"""
query Orders($first: Int!, $after: String, $query: String!) {{
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{
      cursor
      node {{{_ORDER_FIELDS}
        lineItems(first: {LINE_ITEMS_PER_ORDER}) {{
          pageInfo {{ hasNextPage }}
          nodes {{{_LINE_FIELDS}
          }}
        }}
      }}
    }}
  }}
}}
{_FRAGMENTS}"""

SHOP = "query Shop { shop { name myshopifyDomain currencyCode ianaTimezone } }"



def bulk_orders(search: str) -> str:
    """A backfill as one bulk operation: every order matching ``search``, line items as child lines of the
    JSONL result. Bulk queries take connections without ``first``/``after``/``pageInfo``
    (https://shopify.dev/docs/api/usage/bulk-operations/queries)."""
    quoted = search.replace("\\", "\\\\").replace('"', '\\"')
    return f"""
query {{
  orders(query: "{quoted}") {{
    edges {{
      node {{{_ORDER_FIELDS}
        lineItems {{
          edges {{
            node {{{_LINE_FIELDS}
            }}
          }}
        }}
      }}
    }}
  }}
}}
{_FRAGMENTS}"""


RUN_BULK = """
mutation RunBulk($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_STATUS = """
query BulkStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation {
      id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl
    }
  }
}
"""

CURRENT_BULK = "query CurrentBulk { currentBulkOperation(type: QUERY) { id status query } }"

SCOPES = "query Scopes { currentAppInstallation { accessScopes { handle } } }"

TAGS_ADD = """
mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""

TAGS_REMOVE = """
mutation TagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""
