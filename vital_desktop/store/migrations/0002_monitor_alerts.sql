-- 0002: alerts raised by the MONITOR stage (drift, accuracy, latency thresholds).
CREATE TABLE monitor_alerts (
	id VARCHAR NOT NULL, 
	model_id VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	metric VARCHAR NOT NULL, 
	value DOUBLE PRECISION, 
	threshold DOUBLE PRECISION, 
	message VARCHAR NOT NULL, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
