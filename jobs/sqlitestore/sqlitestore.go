package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/internal/sqlstore"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultFile is the store's file name inside a data directory.
const DefaultFile = "jobs.db"

// dialect is SQLite's: numbered ?N placeholders; BEGIN IMMEDIATE serializes writers, so claims need no row
// locks.
var dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Placeholder: func(n int) string { return "?" + strconv.Itoa(n) },
	Identity:    "INTEGER PRIMARY KEY",
}

// Open opens (creating it if needed) the SQLite store at path and brings its schema up to date.
func Open(ctx context.Context, path string) (jobs.Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// One connection: writers in this process queue in database/sql rather than on SQLite's file lock, and
	// nothing in the store holds a connection while waiting for another.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	s, err := sqlstore.Open(ctx, db, dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
