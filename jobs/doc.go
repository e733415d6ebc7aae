// Package jobs runs bestofn's durable offline jobs: uploaded files, jobs with progress, events, checkpoints and
// outputs, and a registry of the models they produce. It is a library: package admin serves it over HTTP at
// /admin/v1, `bestofn job run` uses it in-process, and the job types (the paper's pipeline, training) plug in
// through the Type interface and use a *Run while they work.
//
// # Durability
//
// Everything a user submitted (files, jobs, registered models, activations) is committed to a Store before the
// call that submitted it returns; file contents are written to a temporary name under the data directory,
// fsynced and renamed, with their sha256 recorded. A job's per-item outputs (Run.Output) are appended and
// fsynced, and its checkpoints (Run.SaveCheckpoint) committed, so a job interrupted by kill -9 resumes, when a
// worker reclaims its expired lease, from its last checkpoint without redoing or duplicating items.
//
// # Workers
//
// A Service runs a bounded number of workers (Config.Workers). A worker claims the oldest queued job (or a running
// job whose lease expired) with a lease it renews by heartbeat; several Services on one Postgres store share the
// queue, and each job runs on one worker at a time. A cancel request reaches the running job through its context
// within a heartbeat; the job flushes what it has and ends cancelled.
//
// # Stores
//
// Store is implemented by package jobs/sqlitestore (embedded, pure Go, WAL; the default) and jobs/pgstore
// (PostgreSQL, several replicas sharing one queue; claims with FOR UPDATE SKIP LOCKED), both over the same SQL
// (jobs/internal/sqlstore) and both checked by the conformance suite jobs/storetest. Package jobs/jobstore opens
// the store a --store flag names.
//
// # Testing job types
//
// Package jobs/jobstest runs a Type end to end on a real SQLite store in a temporary directory and can crash
// the Service in the middle of a job (Service.Kill) to check that the type resumes without duplicating work.
// Count (type "count") is the built-in type for tests and demos.
package jobs
