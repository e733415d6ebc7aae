// Package pgstore is the jobs.Store for several bestofn replicas sharing one job queue: PostgreSQL through
// pgx. Workers claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, so each job runs on one worker at a time; the
// schema is created or migrated when a store is opened (table schema_version), under an advisory lock so that
// replicas starting together migrate once.
package pgstore
