-- 0017 (montecarlo sources): source containers defined at this site (the lab's own Marinelli
-- beaker, vial or filter holder), usable by name like the shipped presets in resources/sources.json.
CREATE TABLE mc_source_presets (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	source JSON NOT NULL, 
	provenance JSON NOT NULL, 
	created_by VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_mc_source_presets_name UNIQUE (name)
);
