-- 0003: label types as versioned site data (one row per version; a published version is immutable),
-- the log of taxonomy changes, and the label-type version every canonical label was validated against.

CREATE TABLE label_types (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	class_field VARCHAR, 
	classes JSON NOT NULL, 
	attributes JSON NOT NULL, 
	schema JSON NOT NULL, 
	change_note VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	published_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_label_types_version UNIQUE (name, version)
);

CREATE TABLE label_type_changes (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	from_version VARCHAR, 
	to_version VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	details JSON NOT NULL, 
	labels_changed INTEGER NOT NULL, 
	labels_flagged INTEGER NOT NULL, 
	changed_by VARCHAR NOT NULL, 
	changed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_label_type_changes_name ON label_type_changes (name);

ALTER TABLE canonical_labels ADD COLUMN label_type_version VARCHAR;

ALTER TABLE canonical_label_history ADD COLUMN label_type_version VARCHAR;

ALTER TABLE feedback_items ADD COLUMN label_type VARCHAR;

ALTER TABLE templates ADD COLUMN label_type_version VARCHAR;
