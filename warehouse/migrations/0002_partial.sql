-- Partial order versions: an Amazon order report carries no buyer identity (dedupe/README.md,
-- warehouse/README.md "Merging"). ADD COLUMN appends, which is where ORDER_SCHEMA has `partial`.
-- Every row loaded before came from a full Orders API record: the default fills them with false.
ALTER TABLE orders ADD COLUMN partial BOOLEAN DEFAULT false;
