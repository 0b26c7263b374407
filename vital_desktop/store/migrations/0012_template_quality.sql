-- 0012: template quality. Every scoring of a template version against a sheet's evaluation-allowed
-- canonical labels (`vital template evaluate`, and each candidate an optimisation tried), every
-- optimisation run with its baseline and proposed scores side by side, and each language model's
-- measured prompt and generation speed on this machine.
CREATE TABLE template_evaluations (
	id VARCHAR NOT NULL,
	template_id VARCHAR NOT NULL,
	template_name VARCHAR NOT NULL,
	template_version VARCHAR NOT NULL,
	sheet_id VARCHAR NOT NULL,
	sheet_name VARCHAR NOT NULL,
	model VARCHAR NOT NULL,
	purpose VARCHAR NOT NULL,
	items INTEGER NOT NULL,
	schema_valid_rate DOUBLE PRECISION,
	accuracy DOUBLE PRECISION,
	field_accuracy JSON NOT NULL,
	ece DOUBLE PRECISION,
	details JSON NOT NULL,
	seconds DOUBLE PRECISION NOT NULL,
	created_by VARCHAR NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE template_optimisations (
	id VARCHAR NOT NULL,
	template_name VARCHAR NOT NULL,
	base_version VARCHAR NOT NULL,
	proposed_version VARCHAR,
	sheet_id VARCHAR NOT NULL,
	sheet_name VARCHAR NOT NULL,
	status VARCHAR NOT NULL,
	baseline JSON NOT NULL,
	optimised JSON NOT NULL,
	candidates JSON NOT NULL,
	budget_seconds DOUBLE PRECISION NOT NULL,
	seconds DOUBLE PRECISION NOT NULL,
	created_by VARCHAR NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE TABLE model_speeds (
	model_id VARCHAR NOT NULL,
	threads INTEGER NOT NULL,
	model_name VARCHAR NOT NULL,
	prompt_tokens INTEGER NOT NULL,
	prompt_tokens_per_s DOUBLE PRECISION NOT NULL,
	generated_tokens INTEGER NOT NULL,
	generation_tokens_per_s DOUBLE PRECISION NOT NULL,
	load_seconds DOUBLE PRECISION,
	load_average DOUBLE PRECISION,
	measured_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
	PRIMARY KEY (model_id, threads)
);
