-- 0004: the one label write path. A conflict records why it arose (stale version, another user,
-- the hub, a relaxed usage constraint) and the whole proposal, constraints included, so that
-- accepting it applies exactly what was proposed.
ALTER TABLE label_conflicts ADD COLUMN kind VARCHAR DEFAULT '';
ALTER TABLE label_conflicts ADD COLUMN detail VARCHAR DEFAULT '';
ALTER TABLE label_conflicts ADD COLUMN base_version INTEGER;
ALTER TABLE label_conflicts ADD COLUMN proposed_allowed_uses JSON;
ALTER TABLE label_conflicts ADD COLUMN proposed_prohibited_uses JSON;
ALTER TABLE label_conflicts ADD COLUMN proposed_usage_reason VARCHAR;
ALTER TABLE label_conflicts ADD COLUMN proposed_data_classification JSON;
ALTER TABLE label_conflicts ADD COLUMN proposed_confidence VARCHAR;
ALTER TABLE label_conflicts ADD COLUMN proposed_notes VARCHAR
