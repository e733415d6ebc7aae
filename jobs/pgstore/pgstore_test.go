package pgstore_test

import (
	"context"
	"testing"

	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/jobs/pgstore"
	"github.com/bestofn/bestofn/jobs/storetest"
)

func TestConformance(t *testing.T) {
	pg := jobstest.StartPostgres(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := pg.NewDatabase(t)
		return func() (jobs.Store, error) { return pgstore.Open(context.Background(), dsn) }
	})
}
