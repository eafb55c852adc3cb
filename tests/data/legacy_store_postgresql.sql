-- The metadata store as tabpipe created it before migrations (create_all, no
-- alembic_version table), with a few rows. Generated from that release's
-- metadata.py by compiling its tables for postgresql; used by tests/test_migrations.py.
CREATE TABLE alerts (
	id SERIAL NOT NULL,
	name VARCHAR(200) NOT NULL,
	version INTEGER,
	kind VARCHAR(40) NOT NULL,
	window_label VARCHAR(100),
	message TEXT NOT NULL,
	details JSON NOT NULL,
	action VARCHAR(20) NOT NULL,
	delivered VARCHAR(200),
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_alerts_name ON alerts (name);
CREATE TABLE alias_events (
	id SERIAL NOT NULL,
	name VARCHAR(200) NOT NULL,
	alias VARCHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	previous INTEGER,
	actor VARCHAR(200) NOT NULL,
	reason TEXT NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_alias_events_name ON alias_events (name);
CREATE TABLE aliases (
	name VARCHAR(200) NOT NULL,
	alias VARCHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (name, alias)
);
CREATE TABLE model_versions (
	name VARCHAR(200) NOT NULL,
	version INTEGER NOT NULL,
	bundle_id VARCHAR(64) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	metrics JSON NOT NULL,
	PRIMARY KEY (name, version)
);
CREATE TABLE models (
	name VARCHAR(200) NOT NULL,
	task VARCHAR(20) NOT NULL,
	target VARCHAR(200) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (name)
);
CREATE TABLE retrain_events (
	id SERIAL NOT NULL,
	name VARCHAR(200) NOT NULL,
	champion INTEGER,
	challenger INTEGER,
	promoted INTEGER NOT NULL,
	reason TEXT NOT NULL,
	trigger VARCHAR(200) NOT NULL,
	details JSON NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_retrain_events_name ON retrain_events (name);
CREATE TABLE runs (
	id VARCHAR(64) NOT NULL,
	model_name VARCHAR(200) NOT NULL,
	spec JSON NOT NULL,
	spec_hash VARCHAR(64) NOT NULL,
	status VARCHAR(20) NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	error TEXT,
	outputs JSON,
	PRIMARY KEY (id)
);
CREATE INDEX ix_runs_model_name ON runs (model_name);
CREATE INDEX ix_runs_spec_hash ON runs (spec_hash);
CREATE TABLE snapshots (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	rows INTEGER NOT NULL,
	columns INTEGER NOT NULL,
	schema JSON NOT NULL,
	source JSON NOT NULL,
	parent_id VARCHAR(64),
	path TEXT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_snapshots_name ON snapshots (name);
CREATE TABLE stage_runs (
	id SERIAL NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	stage VARCHAR(64) NOT NULL,
	cache_key VARCHAR(64) NOT NULL,
	status VARCHAR(20) NOT NULL,
	cached INTEGER NOT NULL,
	inputs JSON NOT NULL,
	outputs JSON,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	duration_s FLOAT,
	error TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_stage_runs_cache_key ON stage_runs (cache_key);
CREATE INDEX ix_stage_runs_run_id ON stage_runs (run_id);
INSERT INTO snapshots ("id", "name", "created_at", "rows", "columns", "schema", "source", "parent_id", "path") VALUES ('s1', 'titanic', '2026-11-01T12:00:00+00:00', 891, 12, '{"Age": "double"}', '{"kind": "file"}', NULL, '/x/s1');
INSERT INTO runs ("id", "model_name", "spec", "spec_hash", "status", "started_at", "finished_at", "error", "outputs") VALUES ('r1', 'titanic', '{"target": "Survived"}', 'h1', 'done', '2026-11-01T12:00:00+00:00', '2026-11-01T12:00:00+00:00', NULL, '{"bundle": "b1"}');
INSERT INTO models ("name", "task", "target", "created_at") VALUES ('titanic', 'binary', 'Survived', '2026-11-01T12:00:00+00:00');
INSERT INTO model_versions ("name", "version", "bundle_id", "run_id", "created_at", "metrics") VALUES ('titanic', 1, 'b1', 'r1', '2026-11-01T12:00:00+00:00', '{"validation": 0.8}');
INSERT INTO model_versions ("name", "version", "bundle_id", "run_id", "created_at", "metrics") VALUES ('titanic', 2, 'b2', 'r1', '2026-11-01T12:00:00+00:00', '{"validation": 0.82}');
INSERT INTO aliases ("name", "alias", "version", "updated_at") VALUES ('titanic', 'champion', 2, '2026-11-01T12:00:00+00:00');
INSERT INTO alias_events ("name", "alias", "version", "previous", "actor", "reason", "at") VALUES ('titanic', 'champion', 1, NULL, 'tabpipe run', 'trained', '2026-11-01T12:00:00+00:00');
INSERT INTO alias_events ("name", "alias", "version", "previous", "actor", "reason", "at") VALUES ('titanic', 'champion', 2, 1, 'tabpipe run', 'trained', '2026-11-01T12:00:00+00:00');
