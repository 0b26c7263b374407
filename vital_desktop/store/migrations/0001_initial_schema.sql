-- 0001: the initial site schema (all tables of ARCHITECTURE §3).

CREATE SEQUENCE audit_log_seq;

CREATE TABLE audit_log (
	seq BIGINT DEFAULT nextval('audit_log_seq') NOT NULL, 
	logged_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	username VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	details VARCHAR NOT NULL, 
	prev_hash VARCHAR NOT NULL, 
	row_hash VARCHAR NOT NULL, 
	PRIMARY KEY (seq)
);

CREATE TABLE bundle_channels (
	channel VARCHAR NOT NULL, 
	epoch BIGINT NOT NULL, 
	sequence BIGINT NOT NULL, 
	issued_at TIMESTAMP WITHOUT TIME ZONE, 
	bundle_id VARCHAR, 
	manifest_sha256 VARCHAR, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (channel)
);

CREATE TABLE bundle_ledger (
	id VARCHAR NOT NULL, 
	bundle_id VARCHAR, 
	file_sha256 VARCHAR, 
	direction VARCHAR NOT NULL, 
	channel VARCHAR, 
	epoch BIGINT, 
	sequence BIGINT, 
	issuer VARCHAR, 
	issued_at TIMESTAMP WITHOUT TIME ZONE, 
	outcome VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	details JSON NOT NULL, 
	source_path VARCHAR NOT NULL, 
	acted_by VARCHAR NOT NULL, 
	recorded_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE canonical_label_history (
	id VARCHAR NOT NULL, 
	label_id VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	label_data JSON NOT NULL, 
	allowed_uses JSON NOT NULL, 
	prohibited_uses JSON NOT NULL, 
	usage_reason VARCHAR NOT NULL, 
	data_classification JSON NOT NULL, 
	confidence VARCHAR, 
	notes VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	changed_by VARCHAR NOT NULL, 
	changed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_label_history_version UNIQUE (label_id, version)
);

CREATE INDEX ix_canonical_label_history_label_id ON canonical_label_history (label_id);

CREATE TABLE canonical_labels (
	id VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	label_data JSON NOT NULL, 
	version INTEGER NOT NULL, 
	allowed_uses JSON NOT NULL, 
	prohibited_uses JSON NOT NULL, 
	usage_reason VARCHAR NOT NULL, 
	data_classification JSON NOT NULL, 
	confidence VARCHAR, 
	notes VARCHAR NOT NULL, 
	review_state VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	updated_by VARCHAR NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_canonical_key UNIQUE (sheet_id, item_ref, label_type)
);

CREATE TABLE deployments (
	id VARCHAR NOT NULL, 
	model_id VARCHAR NOT NULL, 
	model_name VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	notes VARCHAR NOT NULL, 
	activated_by VARCHAR NOT NULL, 
	activated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	deactivated_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE TABLE feedback_items (
	id VARCHAR NOT NULL, 
	prediction_id VARCHAR, 
	model_id VARCHAR, 
	sheet_id VARCHAR, 
	item_ref VARCHAR, 
	predicted_class VARCHAR, 
	corrected_class VARCHAR, 
	corrected_label JSON NOT NULL, 
	comment VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	canonical_label_id VARCHAR, 
	review_note VARCHAR NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	reviewed_by VARCHAR, 
	reviewed_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE TABLE label_claims (
	id VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	claimed_by VARCHAR NOT NULL, 
	claimed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_label_claim_key UNIQUE (sheet_id, item_ref, label_type)
);

CREATE TABLE label_conflicts (
	id VARCHAR NOT NULL, 
	label_id VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	current_version INTEGER NOT NULL, 
	proposed_data JSON NOT NULL, 
	proposed_by VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	resolution VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	resolved_by VARCHAR, 
	resolved_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_label_conflicts_label_id ON label_conflicts (label_id);

CREATE TABLE mc_runs (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	config JSON NOT NULL, 
	seed BIGINT NOT NULL, 
	histories BIGINT NOT NULL, 
	results JSON NOT NULL, 
	spectrum JSON NOT NULL, 
	engine_version VARCHAR NOT NULL, 
	duration_s DOUBLE PRECISION, 
	exported_at TIMESTAMP WITHOUT TIME ZONE, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE model_training_lineage (
	id VARCHAR NOT NULL, 
	model_id VARCHAR NOT NULL, 
	training_sheet_id VARCHAR, 
	sheet_id VARCHAR, 
	template_id VARCHAR, 
	template_version VARCHAR, 
	qa_pair_ids JSON NOT NULL, 
	canonical_labels JSON NOT NULL, 
	training_config JSON NOT NULL, 
	trained_by VARCHAR NOT NULL, 
	trained_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_model_training_lineage_model_id ON model_training_lineage (model_id);

CREATE TABLE models (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	kind VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	file_sha256 VARCHAR NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	classes JSON NOT NULL, 
	card JSON NOT NULL, 
	origin VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_models_version UNIQUE (name, version)
);

CREATE TABLE predictions (
	id VARCHAR NOT NULL, 
	model_id VARCHAR NOT NULL, 
	model_name VARCHAR NOT NULL, 
	model_version INTEGER NOT NULL, 
	kind VARCHAR NOT NULL, 
	sheet_id VARCHAR, 
	item_ref VARCHAR, 
	image_path VARCHAR, 
	output JSON NOT NULL, 
	predicted_class VARCHAR, 
	confidence DOUBLE PRECISION, 
	latency_ms DOUBLE PRECISION NOT NULL, 
	image_mean DOUBLE PRECISION, 
	image_std DOUBLE PRECISION, 
	image_width INTEGER, 
	image_height INTEGER, 
	prompt_tokens INTEGER, 
	completion_tokens INTEGER, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_predictions_model_id ON predictions (model_id);

CREATE TABLE qa_pairs (
	id VARCHAR NOT NULL, 
	training_sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	messages JSON NOT NULL, 
	answer JSON NOT NULL, 
	raw_output VARCHAR, 
	ai_error VARCHAR, 
	status VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	confidence DOUBLE PRECISION, 
	canonical_label_id VARCHAR, 
	canonical_label_version INTEGER, 
	allowed_uses JSON NOT NULL, 
	prohibited_uses JSON NOT NULL, 
	usage_reason VARCHAR NOT NULL, 
	data_classification JSON NOT NULL, 
	review_reason VARCHAR NOT NULL, 
	reviewed_by VARCHAR, 
	reviewed_at TIMESTAMP WITHOUT TIME ZONE, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_qa_pair_item UNIQUE (training_sheet_id, item_ref)
);

CREATE INDEX ix_qa_pairs_training_sheet_id ON qa_pairs (training_sheet_id);

CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	description VARCHAR NOT NULL, 
	applied_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (version)
);

CREATE TABLE settings (
	key VARCHAR NOT NULL, 
	value JSON NOT NULL, 
	updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE sheet_items (
	id VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	item_ref VARCHAR NOT NULL, 
	position INTEGER NOT NULL, 
	image_path VARCHAR, 
	file_sha256 VARCHAR, 
	file_size BIGINT, 
	missing BOOLEAN NOT NULL, 
	metadata JSON NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_sheet_items_key UNIQUE (sheet_id, item_ref)
);

CREATE INDEX ix_sheet_items_sheet_id ON sheet_items (sheet_id);

CREATE TABLE sheets (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	metadata_path VARCHAR NOT NULL, 
	metadata_format VARCHAR NOT NULL, 
	image_root VARCHAR, 
	key_column VARCHAR NOT NULL, 
	image_column VARCHAR, 
	columns JSON NOT NULL, 
	classification JSON NOT NULL, 
	item_count INTEGER NOT NULL, 
	missing_count INTEGER NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE templates (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	version VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	system_prompt VARCHAR NOT NULL, 
	user_prompt VARCHAR NOT NULL, 
	input_schema JSON NOT NULL, 
	output_schema JSON NOT NULL, 
	few_shot JSON NOT NULL, 
	model_ref JSON NOT NULL, 
	notes VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	published_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_templates_version UNIQUE (name, version)
);

CREATE TABLE training_sheets (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	sheet_id VARCHAR NOT NULL, 
	template_id VARCHAR NOT NULL, 
	template_name VARCHAR NOT NULL, 
	template_version VARCHAR NOT NULL, 
	label_type VARCHAR NOT NULL, 
	ai_mode VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	total_items INTEGER NOT NULL, 
	config JSON NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	completed_at TIMESTAMP WITHOUT TIME ZONE, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);

CREATE TABLE trust_keys (
	key_id VARCHAR NOT NULL, 
	public_key VARCHAR NOT NULL, 
	role VARCHAR NOT NULL, 
	channels JSON NOT NULL, 
	expires_at TIMESTAMP WITHOUT TIME ZONE, 
	revoked BOOLEAN NOT NULL, 
	revoked_at TIMESTAMP WITHOUT TIME ZONE, 
	source VARCHAR NOT NULL, 
	added_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (key_id)
);

CREATE TABLE users (
	id VARCHAR NOT NULL, 
	username VARCHAR NOT NULL, 
	display_name VARCHAR NOT NULL, 
	role VARCHAR NOT NULL, 
	password_hash VARCHAR NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (username)
);
