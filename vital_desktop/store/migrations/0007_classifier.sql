-- 0007: the classifier work stream. Embeddings of images by a pretrained backbone, computed once
-- per (image content, backbone file) and reused by every later training run.
CREATE TABLE embedding_cache (
	content_sha256 VARCHAR NOT NULL, 
	backbone_sha256 VARCHAR NOT NULL, 
	dim INTEGER NOT NULL, 
	vector BLOB NOT NULL, 
	image_mean DOUBLE PRECISION, 
	image_std DOUBLE PRECISION, 
	image_width INTEGER, 
	image_height INTEGER, 
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (content_sha256, backbone_sha256)
);
