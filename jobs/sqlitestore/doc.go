// Package sqlitestore is the default jobs.Store: an embedded SQLite database (pure Go, modernc.org/sqlite) in
// WAL mode with synchronous=FULL, so that every committed state change survives kill -9 and power loss.
// Several processes may open one file (writes are serialized by SQLite's lock, with a busy timeout); replicas
// on several machines need package jobs/pgstore.
package sqlitestore
