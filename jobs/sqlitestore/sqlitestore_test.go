package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
	"github.com/bestofn/bestofn/jobs/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), sqlitestore.DefaultFile)
		return func() (jobs.Store, error) { return sqlitestore.Open(context.Background(), path) }
	})
}
