// Package sqlstore implements jobs.Store over database/sql for the SQL databases bestofn supports (SQLite and
// PostgreSQL). The statements are shared; a Dialect says what differs (placeholders, row locks for claims, the
// identity column, locks that serialize migrations and version numbering). Packages jobs/sqlitestore and
// jobs/pgstore open the database and choose the dialect.
package sqlstore
