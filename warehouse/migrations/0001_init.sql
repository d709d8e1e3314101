-- The canonical warehouse tables (DESIGN.md "Canonical model").
-- `orders` and `order_lines` hold exactly the columns of pipelines/schema.py ORDER_SCHEMA and
-- LINE_SCHEMA, in the same order (tests/warehouse/test_db.py checks it): extend, never rename.
-- Money is DECIMAL(18,4) (exact), times are TIMESTAMPTZ (UTC).

CREATE TABLE orders (
    order_id             VARCHAR PRIMARY KEY,      -- {channel}:{store}:{external_id}
    channel              VARCHAR NOT NULL,
    store                VARCHAR NOT NULL,
    external_id          VARCHAR NOT NULL,
    order_number         VARCHAR,
    created_at           TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ,
    status               VARCHAR,
    payment_status       VARCHAR,
    currency             VARCHAR,
    presentment_currency VARCHAR,
    subtotal             DECIMAL(18, 4),
    discount             DECIMAL(18, 4),
    shipping             DECIMAL(18, 4),
    tax                  DECIMAL(18, 4),
    total                DECIMAL(18, 4),
    refunded             DECIMAL(18, 4),
    presentment_total    DECIMAL(18, 4),
    total_base           DECIMAL(18, 4),
    customer_id          VARCHAR,                  -- dedupe/identity.py
    channel_customer_key VARCHAR,
    email                VARCHAR,
    phone                VARCHAR,
    buyer_name           VARCHAR,
    pii_masked           BOOLEAN,
    ship_name            VARCHAR,
    ship_line1           VARCHAR,
    ship_line2           VARCHAR,
    ship_city            VARCHAR,
    ship_region          VARCHAR,
    ship_postal_code     VARCHAR,
    ship_country         VARCHAR,
    fulfilled_by         VARCHAR,
    ship_by              TIMESTAMPTZ,
    mirror_of            VARCHAR,
    related_order        VARCHAR,
    source_name          VARCHAR,
    duplicate_of         VARCHAR,                  -- dedupe/mirrors.py
    batch_id             VARCHAR,
    landed_at            TIMESTAMPTZ,
    record_hash          VARCHAR
);

CREATE TABLE order_lines (
    order_id   VARCHAR NOT NULL,
    line_no    INTEGER NOT NULL,
    sku        VARCHAR,
    master_sku VARCHAR,
    title      VARCHAR,
    quantity   INTEGER,
    unit_price DECIMAL(18, 4),
    discount   DECIMAL(18, 4),
    tax        DECIMAL(18, 4),
    total      DECIMAL(18, 4),
    PRIMARY KEY (order_id, line_no)
);

-- Every record that could not be normalized. quarantine_key = sha256 over (batch_id, channel,
-- store, coalesce(external_id, ''), payload_sha256): re-processing a batch adds nothing twice.
CREATE TABLE quarantine (
    channel        VARCHAR,
    store          VARCHAR,
    external_id    VARCHAR,
    reason         VARCHAR NOT NULL,
    payload        VARCHAR,
    landed_at      TIMESTAMPTZ,
    batch_id       VARCHAR,
    records        INTEGER NOT NULL DEFAULT 1,
    quarantined_at TIMESTAMPTZ NOT NULL,
    payload_sha256 VARCHAR NOT NULL,
    quarantine_key VARCHAR PRIMARY KEY
);

-- One row per resolved person, rebuilt by dedupe/identity.py. Figures count only originals
-- (duplicate_of IS NULL) that are not cancelled. tags/vip/at_risk belong to the CRM tagging step
-- and survive a rebuild for every customer_id that still exists.
CREATE TABLE customers (
    customer_id      VARCHAR PRIMARY KEY,
    name             VARCHAR,
    email            VARCHAR,
    phone            VARCHAR,
    country          VARCHAR,
    first_order_at   TIMESTAMPTZ,
    last_order_at    TIMESTAMPTZ,
    orders_count     INTEGER NOT NULL DEFAULT 0,
    total_spent_base DECIMAL(18, 4) NOT NULL DEFAULT 0,
    tags             VARCHAR[] NOT NULL DEFAULT [],
    vip              BOOLEAN NOT NULL DEFAULT false,
    at_risk          BOOLEAN NOT NULL DEFAULT false,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Every channel identity seen, and the customer it resolved to. rule: email | phone |
-- channel_customer | self (deterministic) or the name of a probabilistic linker, with its score.
CREATE TABLE customer_identities (
    identity_key         VARCHAR PRIMARY KEY,
    channel              VARCHAR NOT NULL,
    store                VARCHAR NOT NULL,
    channel_customer_key VARCHAR,
    email                VARCHAR,
    phone                VARCHAR,
    name                 VARCHAR,
    line1                VARCHAR,
    city                 VARCHAR,
    postal_code          VARCHAR,
    country              VARCHAR,
    customer_id          VARCHAR NOT NULL,
    rule                 VARCHAR NOT NULL,
    score                DOUBLE,
    linked_at            TIMESTAMPTZ NOT NULL
);

-- Landed batches already normalized and merged: loaded + quarantined = records, always.
CREATE TABLE processed_batches (
    batch_id     VARCHAR PRIMARY KEY,
    channel      VARCHAR NOT NULL,
    store        VARCHAR NOT NULL,
    stream       VARCHAR,
    seq          BIGINT,
    source       VARCHAR,
    records      BIGINT NOT NULL DEFAULT 0,
    loaded       BIGINT NOT NULL DEFAULT 0,
    quarantined  BIGINT NOT NULL DEFAULT 0,
    landed_at    TIMESTAMPTZ,
    processed_at TIMESTAMPTZ NOT NULL
);

-- What fulfillment exported, so nothing ships twice (fulfillment/).
CREATE TABLE export_ledger (
    order_id        VARCHAR PRIMARY KEY,
    export_batch_id VARCHAR NOT NULL,
    exported_at     TIMESTAMPTZ NOT NULL,
    target          VARCHAR NOT NULL
);

-- One row per flow run that touched the warehouse (optional bookkeeping for `orderhub status`).
CREATE TABLE sync_runs (
    run_id      VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      VARCHAR NOT NULL,
    details     VARCHAR
);
