"""The CRM store's tables (SQLAlchemy Core): one definition for SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from crm.types import Money, UtcDateTime

metadata = MetaData()

TAG_SOURCES = ("auto", "manual")
OVERRIDE_KINDS = ("must_link", "cannot_link")

# One row per resolved person, mirrored from the warehouse `customers` table. `name_search` is the
# Unicode-aware lower(name) (crm/search.py name_key); `sync_hash` fingerprints the warehouse row so
# a sync rewrites only what changed.
customers = Table(
    "customers",
    metadata,
    Column("customer_id", String, primary_key=True),
    Column("name", Text),
    Column("name_search", Text),
    Column("email", String),
    Column("phone", String),
    Column("country", String(2)),
    Column("first_order_at", UtcDateTime),
    Column("last_order_at", UtcDateTime),
    Column("orders_count", Integer, nullable=False, server_default=text("0")),
    Column("total_spent_base", Money, nullable=False, server_default=text("0")),
    Column("updated_at", UtcDateTime),
    Column("sync_hash", BigInteger),
    Index("ix_customers_email", "email"),
    Index("ix_customers_phone", "phone"),
    # (name_search, customer_id) covers a substring scan: SQLite reads the narrow index, not the table.
    Index("ix_customers_name_search", "name_search", "customer_id"),
)

# Every channel identity seen, with the customer it resolved to (warehouse `customer_identities`).
identities = Table(
    "identities",
    metadata,
    Column("identity_key", String, primary_key=True),
    Column("customer_id", String, nullable=False),
    Column("channel", String, nullable=False),
    Column("store", String, nullable=False),
    Column("channel_customer_key", String),
    Column("email", String),
    Column("phone", String),
    Column("name", Text),
    Column("name_search", Text),
    Column("line1", Text),
    Column("city", Text),
    Column("postal_code", String),
    Column("country", String(2)),
    Column("rule", String),
    Column("score", Float),  # the probabilistic linker's score (not money), NULL for deterministic rules
    Column("linked_at", UtcDateTime),
    Column("sync_hash", BigInteger),
    Index("ix_identities_customer_id", "customer_id"),
    Index("ix_identities_email", "email"),
    Index("ix_identities_phone", "phone"),
    Index("ix_identities_name_search", "name_search", "customer_id"),
)

# Tags with history: a row is one period during which a tag was set. Removing sets removed_at;
# setting it again adds a new row. Rows are never deleted.
tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String, nullable=False),
    Column("tag", String, nullable=False),
    Column("source", String(8), nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
    CheckConstraint("source IN ('auto', 'manual')", name="ck_tags_source"),
    Index("ix_tags_customer", "customer_id", "removed_at"),
    # At most one active row per (customer, tag, source), even with two writers racing.
    Index(
        "ux_tags_active",
        "customer_id",
        "tag",
        "source",
        unique=True,
        sqlite_where=text("removed_at IS NULL"),
        postgresql_where=text("removed_at IS NULL"),
    ),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String, nullable=False),
    Column("author", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_notes_customer", "customer_id", "created_at"),
)

# Customer service's corrections to identity resolution, honoured by every later run: must_link merges
# two identity keys, cannot_link keeps them apart. A pair is stored once (left_key < right_key); a new
# decision on a pair revokes the active one (revoked_at/revoked_by) instead of deleting it. The order
# is Python's (code points), set by CrmStore: no CHECK, since PostgreSQL's `<` follows its collation.
identity_overrides = Table(
    "identity_overrides",
    metadata,
    Column("override_id", Integer, primary_key=True, autoincrement=True),
    Column("left_key", String, nullable=False),
    Column("right_key", String, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("note", Text),
    Column("author", String),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("revoked_by", String),
    CheckConstraint("kind IN ('must_link', 'cannot_link')", name="ck_identity_overrides_kind"),
    Index("ix_identity_overrides_pair", "left_key", "right_key"),  # a pair's whole history
    # At most one active decision per pair, even with two writers racing.
    Index(
        "ux_identity_overrides_active",
        "left_key",
        "right_key",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

# Each customer's order history across channels, for customer service (warehouse `orders`,
# latest version, mirrors included and marked by duplicate_of).
orders = Table(
    "orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("customer_id", String),
    Column("channel", String, nullable=False),
    Column("store", String, nullable=False),
    Column("external_id", String),
    Column("order_number", String),
    Column("created_at", UtcDateTime),
    Column("updated_at", UtcDateTime),
    Column("status", String),
    Column("payment_status", String),
    Column("currency", String(3)),
    Column("total", Money),
    Column("total_base", Money),
    Column("duplicate_of", String),
    Column("duplicate_evidence", Text),  # why duplicate_of is set (added after the first release: see store.upgrade)
    Column("ship_city", Text),
    Column("ship_country", String(2)),
    Column("sync_hash", BigInteger),
    Index("ix_orders_customer", "customer_id", "created_at"),
    Index("ix_orders_order_number", "order_number"),
    Index("ix_orders_external_id", "external_id"),
)

# One row per synced table: when it was last synced and how much changed.
sync_state = Table(
    "sync_state",
    metadata,
    Column("name", String, primary_key=True),
    Column("synced_at", UtcDateTime, nullable=False),
    Column("watermark", UtcDateTime),  # newest updated_at/linked_at seen, for the operator
    Column("rows", Integer, nullable=False),
    Column("changed", Integer, nullable=False),
)
