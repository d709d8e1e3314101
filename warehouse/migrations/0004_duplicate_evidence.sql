-- Why an order is flagged as a mirror (dedupe/mirrors.py): "mirror_of amazon:<id>" when it carries
-- its original's id, or the same-purchase evidence (buyer, items, total, minutes apart) when it
-- does not. Appended last, where ORDER_SCHEMA has it; dedupe/mirrors.py fills it on the next run.
ALTER TABLE orders ADD COLUMN duplicate_evidence VARCHAR;
