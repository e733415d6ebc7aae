package pgstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/internal/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// dialect is PostgreSQL's: native $N placeholders, row locks for claims that skip rows another worker is
// claiming, advisory locks for migrations and model version numbers.
var dialect = sqlstore.Dialect{
	Name:          "postgres",
	ClaimLock:     " FOR UPDATE SKIP LOCKED",
	RowLock:       " FOR UPDATE",
	Identity:      "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
	MigrationLock: "SELECT pg_advisory_xact_lock(5626301)",
	ModelLock:     "SELECT pg_advisory_xact_lock(hashtext($1))",
}

// Open connects to the database at dsn (a postgres:// URL or a key=value connection string) and brings its
// schema up to date.
func Open(ctx context.Context, dsn string) (jobs.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	s, err := sqlstore.Open(ctx, db, dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
