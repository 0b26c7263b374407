-- 0011: the language model's evidence and confidence. A Q&A pair keeps the per-field confidence of
-- a language-model answer (calibrated when the template version has a calibration) and the evidence
-- the model was given (classifier probabilities, occlusion summary); a calibration holds the fitted
-- temperature of one enumerated field of one template version.
ALTER TABLE qa_pairs ADD COLUMN field_confidence JSON;
ALTER TABLE qa_pairs ADD COLUMN evidence JSON;
CREATE TABLE llm_calibrations (
	id VARCHAR NOT NULL, 
	template_id VARCHAR NOT NULL, 
	template_ref VARCHAR NOT NULL, 
	field VARCHAR NOT NULL, 
	temperature DOUBLE PRECISION NOT NULL, 
	labels INTEGER NOT NULL, 
	accuracy DOUBLE PRECISION, 
	ece_before DOUBLE PRECISION, 
	ece_after DOUBLE PRECISION, 
	sheet_id VARCHAR, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_llm_calibration_field UNIQUE (template_id, field)
);
