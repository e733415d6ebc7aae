package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrations are the schema, one entry per version; version i+1 is migrations[i]. Never edit an entry that
// has shipped: append a new one. "{{identity}}" becomes the dialect's auto-numbered primary key column.
var migrations = [][]string{
	{ // 1
		`CREATE TABLE files (
			id TEXT PRIMARY KEY,
			filename TEXT NOT NULL,
			purpose TEXT NOT NULL,
			bytes BIGINT NOT NULL,
			sha256 TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			ord BIGINT NOT NULL,
			job_id TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX files_ord ON files (ord)`,
		`CREATE INDEX files_job ON files (job_id)`,
		`CREATE TABLE jobs (
			id TEXT PRIMARY KEY,
			type TEXT NOT NULL,
			status TEXT NOT NULL,
			params TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			ord BIGINT NOT NULL,
			started_at BIGINT,
			finished_at BIGINT,
			progress TEXT NOT NULL,
			metrics TEXT NOT NULL,
			result TEXT,
			outputs TEXT NOT NULL,
			error TEXT,
			attempts INTEGER NOT NULL DEFAULT 0,
			interruptions INTEGER NOT NULL DEFAULT 0,
			cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
			checkpoint TEXT,
			lease_owner TEXT NOT NULL DEFAULT '',
			lease_token TEXT NOT NULL DEFAULT '',
			lease_until BIGINT NOT NULL DEFAULT 0,
			event_seq BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX jobs_claim ON jobs (status, ord)`,
		`CREATE INDEX jobs_ord ON jobs (ord)`,
		`CREATE TABLE events (
			job_id TEXT NOT NULL,
			seq BIGINT NOT NULL,
			created_at BIGINT NOT NULL,
			level TEXT NOT NULL,
			message TEXT NOT NULL,
			data TEXT,
			PRIMARY KEY (job_id, seq)
		)`,
		`CREATE TABLE models (
			name TEXT NOT NULL,
			version INTEGER NOT NULL,
			kind TEXT NOT NULL,
			file_id TEXT NOT NULL,
			job_id TEXT NOT NULL DEFAULT '',
			sha256 TEXT NOT NULL,
			created_at BIGINT NOT NULL,
			metadata TEXT,
			PRIMARY KEY (name, version)
		)`,
		`CREATE INDEX models_file ON models (file_id)`,
		`CREATE TABLE activations (
			id {{identity}},
			model TEXT NOT NULL,
			version INTEGER NOT NULL,
			serve_as TEXT NOT NULL,
			activated_at BIGINT NOT NULL
		)`,
	},
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema to SchemaVersion in one transaction per version, under the dialect's lock so that
// replicas starting together migrate once. A database newer than this build is an error.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateStep(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (s *Store) migrateStep(ctx context.Context) (done bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.MigrationLock != "" {
			if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
				return fmt.Errorf("lock for migration: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var version sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		v := int(version.Int64)
		switch {
		case v > len(migrations):
			return fmt.Errorf("database schema version %d is newer than this build's %d", v, len(migrations))
		case v == len(migrations):
			done = true
			return nil
		}
		for _, stmt := range migrations[v] {
			stmt = strings.ReplaceAll(stmt, "{{identity}}", s.d.Identity)
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM schema_version`)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version (version) VALUES ($1)`), v+1)
		return err
	})
	return done, err
}
