// Package jobstore opens the jobs.Store a --store flag (or BESTOFN_STORE) names: "sqlite" (the default: the
// file jobs.db in the data directory), "sqlite:PATH", or a postgres:// (postgresql://) URL.
package jobstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/pgstore"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
)

// EnvVar is the environment variable that names the store when the flag is not given.
const EnvVar = "BESTOFN_STORE"

// Open opens the store spec names; dataDir is where the default SQLite file lives.
func Open(ctx context.Context, spec, dataDir string) (jobs.Store, error) {
	switch {
	case spec == "" || spec == "sqlite":
		return sqlitestore.Open(ctx, filepath.Join(dataDir, sqlitestore.DefaultFile))
	case strings.HasPrefix(spec, "sqlite:"):
		return sqlitestore.Open(ctx, strings.TrimPrefix(spec, "sqlite:"))
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return pgstore.Open(ctx, spec)
	default:
		return nil, fmt.Errorf("jobstore: --store %q: want sqlite, sqlite:PATH or a postgres:// URL", Redact(spec))
	}
}

// Redact hides the password of a postgres URL for logs and errors.
func Redact(spec string) string {
	scheme, rest, ok := strings.Cut(spec, "://")
	if !ok {
		return spec
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return spec
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return spec
}
