-- 0006: sheets that grow (rescans make item versions) and erasure (models trained on erased data).
ALTER TABLE sheet_items ADD COLUMN item_version INTEGER DEFAULT 1;

ALTER TABLE sheet_items ADD COLUMN changed_at TIMESTAMP WITHOUT TIME ZONE;

ALTER TABLE sheets ADD COLUMN rescanned_at TIMESTAMP WITHOUT TIME ZONE;

ALTER TABLE models ADD COLUMN retrain_reason VARCHAR DEFAULT '';
