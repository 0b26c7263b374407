-- 0013: documents and telemetry series as sheet items (not only images).
-- The kind of a sheet's items (image, document, telemetry); every existing sheet holds images.
ALTER TABLE sheets ADD COLUMN item_kind VARCHAR DEFAULT 'image';

-- What an item holds besides its file: a document's extracted text, a telemetry item's series
-- (for the review plot). Read by the LABEL views and the prompt code without re-reading files.
CREATE TABLE item_contents (
	sheet_id VARCHAR NOT NULL,
	item_ref VARCHAR NOT NULL,
	kind VARCHAR NOT NULL,
	text VARCHAR,
	series JSON,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (sheet_id, item_ref)
);
