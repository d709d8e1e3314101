-- Customer identity resolution explained (dedupe/PEOPLE.md): every link that holds a customer
-- together, with its rule, probability and per-field match weights; pairs waiting for a person to
-- decide; and customers flagged for a look. Rebuilt by every resolution run.
CREATE TABLE customer_links (
    left_key     VARCHAR NOT NULL,
    right_key    VARCHAR NOT NULL,
    rule         VARCHAR NOT NULL,
    probability  DOUBLE,
    weights      VARCHAR,
    customer_id  VARCHAR
);
CREATE TABLE customer_review (
    left_key        VARCHAR NOT NULL,
    right_key       VARCHAR NOT NULL,
    probability     DOUBLE NOT NULL,
    weights         VARCHAR,
    left_customer   VARCHAR,
    right_customer  VARCHAR
);
CREATE TABLE customer_flags (
    customer_id  VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL
);
