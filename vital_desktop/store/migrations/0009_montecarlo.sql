-- 0009 (montecarlo): detector presets fitted at this site (characterization against measured
-- efficiencies), with the provenance of the fit.
CREATE TABLE mc_detector_presets (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	detector JSON NOT NULL, 
	provenance JSON NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_mc_detector_presets_name UNIQUE (name)
);
