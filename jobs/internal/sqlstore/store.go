package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bestofn/bestofn/jobs"
)

// Dialect is what differs between the SQL databases.
type Dialect struct {
	// Name is used in error messages, e.g. "sqlite".
	Name string
	// Placeholder turns the n-th (1-based) parameter into the driver's syntax; statements are written with
	// $1, $2, ...
	Placeholder func(n int) string
	// ClaimLock is appended to the claim's SELECT, e.g. " FOR UPDATE SKIP LOCKED", and RowLock to a SELECT of
	// a row the transaction then updates, e.g. " FOR UPDATE"; both "" where write transactions are serialized
	// anyway (SQLite's BEGIN IMMEDIATE).
	ClaimLock, RowLock string
	// Identity is the column type of an auto-numbered primary key.
	Identity string
	// MigrationLock, when not "", is executed first in each migration transaction.
	MigrationLock string
	// ModelLock, when not "", is executed with the model name ($1) before a version number is chosen.
	ModelLock string
}

// Store is a jobs.Store on a *sql.DB.
type Store struct {
	db *sql.DB
	d  Dialect
}

var _ jobs.Store = (*Store)(nil)

// Open migrates db's schema and returns a Store that owns db (Close closes it).
func Open(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	s := &Store{db: db, d: d}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("%s store: %w", d.Name, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB is the underlying database, for tests.
func (s *Store) DB() *sql.DB { return s.db }

var placeholder = regexp.MustCompile(`\$[0-9]+`)

// q rewrites a statement's $N placeholders for the dialect.
func (s *Store) q(stmt string) string {
	if s.d.Placeholder == nil {
		return stmt
	}
	return placeholder.ReplaceAllStringFunc(stmt, func(p string) string {
		var n int
		fmt.Sscanf(p[1:], "%d", &n)
		return s.d.Placeholder(n)
	})
}

// tx runs f in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s store: begin: %w", s.d.Name, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s store: commit: %w", s.d.Name, err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(...any) error }

// queryAll runs a query and scans every row; what names the rows in errors.
func queryAll[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), stmt string, args ...any) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, s.q(stmt), args...)
	if err != nil {
		return nil, fmt.Errorf("%s store: %s: %w", s.d.Name, what, err)
	}
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s store: %s: %w", s.d.Name, what, err)
		}
		list = append(list, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s store: %s: %w", s.d.Name, what, err)
	}
	return list, nil
}

func notFound(what, id string) error { return fmt.Errorf("%w: %s %q", jobs.ErrNotFound, what, id) }

// ---- files

const fileCols = `id, filename, purpose, bytes, sha256, created_at, job_id`

func scanFile(row scanner) (jobs.File, error) {
	f := jobs.File{Object: "file"}
	err := row.Scan(&f.ID, &f.Filename, &f.Purpose, &f.Bytes, &f.SHA256, &f.CreatedAt, &f.JobID)
	return f, err
}

func (s *Store) insertFile(ctx context.Context, q querier, f jobs.File) error {
	_, err := q.ExecContext(ctx, s.q(`INSERT INTO files (id, filename, purpose, bytes, sha256, created_at, ord, job_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
		f.ID, f.Filename, f.Purpose, f.Bytes, f.SHA256, f.CreatedAt, time.Now().UnixNano(), f.JobID)
	if err != nil {
		return fmt.Errorf("%s store: insert file %s: %w", s.d.Name, f.ID, err)
	}
	return nil
}

func (s *Store) CreateFile(ctx context.Context, f jobs.File) error { return s.insertFile(ctx, s.db, f) }

func (s *Store) File(ctx context.Context, id string) (jobs.File, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, s.q(`SELECT `+fileCols+` FROM files WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, notFound("file", id)
	}
	if err != nil {
		return f, fmt.Errorf("%s store: file %s: %w", s.d.Name, id, err)
	}
	return f, nil
}

func (s *Store) Files(ctx context.Context, purpose string) ([]jobs.File, error) {
	return queryAll(ctx, s, "files", scanFile,
		`SELECT `+fileCols+` FROM files WHERE ($1 = '' OR purpose = $1) ORDER BY ord DESC`, purpose)
}

func (s *Store) DeleteFile(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM files WHERE id = $1`), id).Scan(&n); err != nil {
			return fmt.Errorf("%s store: delete file %s: %w", s.d.Name, id, err)
		}
		if n == 0 {
			return notFound("file", id)
		}
		var model string
		err := tx.QueryRowContext(ctx, s.q(`SELECT name FROM models WHERE file_id = $1 LIMIT 1`), id).Scan(&model)
		if err == nil {
			return fmt.Errorf("%w: file %s is registered as model %q", jobs.ErrConflict, id, model)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s store: delete file %s: %w", s.d.Name, id, err)
		}
		var job string
		err = tx.QueryRowContext(ctx, s.q(`SELECT id FROM jobs WHERE status IN ('queued', 'running') AND params LIKE $1 LIMIT 1`),
			`%"`+id+`"%`).Scan(&job)
		if err == nil {
			return fmt.Errorf("%w: file %s is an input of %s", jobs.ErrConflict, id, job)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s store: delete file %s: %w", s.d.Name, id, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM files WHERE id = $1`), id); err != nil {
			return fmt.Errorf("%s store: delete file %s: %w", s.d.Name, id, err)
		}
		return nil
	})
}

// ---- jobs

const jobCols = `id, type, status, params, created_at, started_at, finished_at, progress, metrics, result, outputs,
	error, attempts, cancel_requested`

func scanJob(row scanner) (jobs.Job, error) {
	j := jobs.Job{Object: "job"}
	var (
		params, progress, metrics, outputs string
		result, jobErr                     sql.NullString
		started, finished                  sql.NullInt64
		status                             string
	)
	err := row.Scan(&j.ID, &j.Type, &status, &params, &j.CreatedAt, &started, &finished, &progress, &metrics,
		&result, &outputs, &jobErr, &j.Attempts, &j.CancelRequested)
	if err != nil {
		return j, err
	}
	j.Status = jobs.Status(status)
	j.Params = json.RawMessage(params)
	if started.Valid {
		j.StartedAt = &started.Int64
	}
	if finished.Valid {
		j.FinishedAt = &finished.Int64
	}
	if result.Valid {
		j.Result = json.RawMessage(result.String)
	}
	if err := json.Unmarshal([]byte(progress), &j.Progress); err != nil {
		return j, fmt.Errorf("job %s progress: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(metrics), &j.Metrics); err != nil {
		return j, fmt.Errorf("job %s metrics: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(outputs), &j.Outputs); err != nil {
		return j, fmt.Errorf("job %s outputs: %w", j.ID, err)
	}
	if jobErr.Valid {
		j.Error = &jobs.JobError{}
		if err := json.Unmarshal([]byte(jobErr.String), j.Error); err != nil {
			return j, fmt.Errorf("job %s error: %w", j.ID, err)
		}
	}
	if j.Metrics == nil {
		j.Metrics = map[string]float64{}
	}
	if j.Outputs == nil {
		j.Outputs = []string{}
	}
	return j, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on the store's own types
	}
	return string(b)
}

func nullJSON(b json.RawMessage) sql.NullString {
	if b == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(b), Valid: true}
}

func (s *Store) CreateJob(ctx context.Context, j jobs.Job) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		outputs := j.Outputs
		if outputs == nil {
			outputs = []string{}
		}
		metrics := j.Metrics
		if metrics == nil {
			metrics = map[string]float64{}
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO jobs (id, type, status, params, created_at, ord, progress, metrics,
			outputs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`),
			j.ID, j.Type, string(jobs.StatusQueued), string(j.Params), j.CreatedAt, time.Now().UnixNano(),
			mustJSON(j.Progress), mustJSON(metrics), mustJSON(outputs))
		if err != nil {
			return fmt.Errorf("%s store: insert job %s: %w", s.d.Name, j.ID, err)
		}
		return s.addEvents(ctx, tx, j.ID, jobs.Event{Level: "info", Message: "job queued"})
	})
}

func (s *Store) getJob(ctx context.Context, q querier, id string) (jobs.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE id = $1`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, notFound("job", id)
	}
	if err != nil {
		return j, fmt.Errorf("%s store: job %s: %w", s.d.Name, id, err)
	}
	return j, nil
}

func (s *Store) Job(ctx context.Context, id string) (jobs.Job, error) { return s.getJob(ctx, s.db, id) }

func (s *Store) Jobs(ctx context.Context, f jobs.JobFilter) ([]jobs.Job, error) {
	return queryAll(ctx, s, "jobs", scanJob, `SELECT `+jobCols+` FROM jobs WHERE ($1 = '' OR type = $1)
		AND ($2 = '' OR status = $2) ORDER BY ord DESC`, f.Type, string(f.Status))
}

// addEvents appends events to a job's log with the next sequence numbers.
func (s *Store) addEvents(ctx context.Context, tx *sql.Tx, id string, events ...jobs.Event) error {
	if len(events) == 0 {
		return nil
	}
	var last int64
	err := tx.QueryRowContext(ctx, s.q(`UPDATE jobs SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq`),
		id, len(events)).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("job", id)
	}
	if err != nil {
		return fmt.Errorf("%s store: events of %s: %w", s.d.Name, id, err)
	}
	seq := last - int64(len(events))
	now := time.Now().Unix()
	for _, e := range events {
		seq++
		if e.CreatedAt == 0 {
			e.CreatedAt = now
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO events (job_id, seq, created_at, level, message, data)
			VALUES ($1, $2, $3, $4, $5, $6)`), id, seq, e.CreatedAt, e.Level, e.Message, nullJSON(e.Data))
		if err != nil {
			return fmt.Errorf("%s store: event of %s: %w", s.d.Name, id, err)
		}
	}
	return nil
}

func (s *Store) Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error) {
	if _, err := s.getJob(ctx, s.db, id); err != nil {
		return nil, err
	}
	stmt := `SELECT seq, created_at, level, message, data FROM events WHERE job_id = $1 AND seq > $2 ORDER BY seq`
	args := []any{id, after}
	if limit > 0 {
		stmt += ` LIMIT $3`
		args = append(args, limit)
	}
	return queryAll(ctx, s, "events of "+id, func(row scanner) (jobs.Event, error) {
		e := jobs.Event{JobID: id}
		var data sql.NullString
		err := row.Scan(&e.Seq, &e.CreatedAt, &e.Level, &e.Message, &data)
		if data.Valid {
			e.Data = json.RawMessage(data.String)
		}
		return e, err
	}, stmt, args...)
}

func (s *Store) CancelJob(ctx context.Context, id string, now time.Time) (jobs.Job, error) {
	var j jobs.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var status string
		var leaseUntil int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT status, lease_until FROM jobs WHERE id = $1`+s.d.RowLock), id).
			Scan(&status, &leaseUntil)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("job", id)
		}
		if err != nil {
			return fmt.Errorf("%s store: cancel %s: %w", s.d.Name, id, err)
		}
		switch {
		case jobs.Status(status).Finished():
			return fmt.Errorf("%w: job %s is already %s", jobs.ErrConflict, id, status)
		case status == string(jobs.StatusQueued) || leaseUntil < now.UnixMilli():
			_, err = tx.ExecContext(ctx, s.q(`UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE,
				finished_at = $2, lease_owner = '', lease_token = '', lease_until = 0 WHERE id = $1`), id, now.Unix())
			if err == nil {
				err = s.addEvents(ctx, tx, id, jobs.Event{Level: "info", Message: "job cancelled"})
			}
		default:
			_, err = tx.ExecContext(ctx, s.q(`UPDATE jobs SET cancel_requested = TRUE WHERE id = $1`), id)
			if err == nil {
				err = s.addEvents(ctx, tx, id, jobs.Event{Level: "info", Message: "cancel requested"})
			}
		}
		if err != nil {
			return fmt.Errorf("%s store: cancel %s: %w", s.d.Name, id, err)
		}
		j, err = s.getJob(ctx, tx, id)
		return err
	})
	return j, err
}

func (s *Store) RetryJob(ctx context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET status = 'queued', error = NULL, finished_at = NULL,
			cancel_requested = FALSE, attempts = 0, interruptions = 0 WHERE id = $1 AND status IN ('failed', 'cancelled')`), id)
		if err != nil {
			return fmt.Errorf("%s store: retry %s: %w", s.d.Name, id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			j, err := s.getJob(ctx, tx, id)
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: job %s is %s; only failed or cancelled jobs can be retried", jobs.ErrConflict, id, j.Status)
		}
		if err := s.addEvents(ctx, tx, id, jobs.Event{Level: "info", Message: "job queued again (retry)"}); err != nil {
			return err
		}
		j, err = s.getJob(ctx, tx, id)
		return err
	})
	return j, err
}

// ---- workers

func (s *Store) ClaimJob(ctx context.Context, req jobs.ClaimRequest) (*jobs.Claim, error) {
	if len(req.Types) == 0 {
		return nil, nil
	}
	var claim *jobs.Claim
	err := s.tx(ctx, func(tx *sql.Tx) error {
		args := []any{req.Now.UnixMilli()}
		marks := make([]string, len(req.Types))
		for i, t := range req.Types {
			args = append(args, t)
			marks[i] = fmt.Sprintf("$%d", i+2)
		}
		only := ""
		if req.JobID != "" {
			args = append(args, req.JobID)
			only = fmt.Sprintf(" AND id = $%d", len(args))
		}
		var id, status string
		err := tx.QueryRowContext(ctx, s.q(`SELECT id, status FROM jobs
			WHERE (status = 'queued' OR (status = 'running' AND lease_until < $1)) AND type IN (`+strings.Join(marks, ", ")+`)`+only+`
			ORDER BY ord LIMIT 1`+s.d.ClaimLock), args...).Scan(&id, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s store: claim: %w", s.d.Name, err)
		}
		interrupted := status == string(jobs.StatusRunning)
		var checkpoint sql.NullString
		var interruptions int
		err = tx.QueryRowContext(ctx, s.q(`UPDATE jobs SET status = 'running', attempts = attempts + 1,
			interruptions = interruptions + $2, started_at = COALESCE(started_at, $3), lease_owner = $4,
			lease_token = $5, lease_until = $6 WHERE id = $1 RETURNING checkpoint, interruptions`),
			id, boolInt(interrupted), req.Now.Unix(), req.Owner, req.Token, req.Now.Add(req.Lease).UnixMilli()).
			Scan(&checkpoint, &interruptions)
		if err != nil {
			return fmt.Errorf("%s store: claim %s: %w", s.d.Name, id, err)
		}
		j, err := s.getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		claim = &jobs.Claim{Job: j, Interrupted: interrupted, Interruptions: interruptions}
		if checkpoint.Valid {
			claim.Checkpoint = json.RawMessage(checkpoint.String)
		}
		msg := fmt.Sprintf("attempt %d started by %s", j.Attempts, req.Owner)
		if interrupted {
			msg = fmt.Sprintf("attempt %d started by %s after the previous worker's lease expired", j.Attempts, req.Owner)
		}
		return s.addEvents(ctx, tx, id, jobs.Event{Level: "info", Message: msg})
	})
	return claim, err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// colVal is a column to set to a value.
type colVal struct {
	col string
	val any
}

// applyRun writes u and the extra columns to a job this token holds; ErrLeaseLost when the token does not
// hold it (another worker claimed it, or it is no longer running).
func (s *Store) applyRun(ctx context.Context, tx *sql.Tx, id, token string, u jobs.RunUpdate, extra ...colVal) (cancelRequested bool, err error) {
	sets := []string{"event_seq = event_seq"} // a no-op, so that the list is never empty
	params := []any{id, token}
	add := func(col string, v any) {
		params = append(params, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", col, len(params)))
	}
	if !u.LeaseUntil.IsZero() {
		add("lease_until", u.LeaseUntil.UnixMilli())
	}
	if u.Progress != nil {
		add("progress", mustJSON(u.Progress))
	}
	if u.Metrics != nil {
		add("metrics", mustJSON(u.Metrics))
	}
	if u.Result != nil {
		add("result", string(u.Result))
	}
	if u.Checkpoint != nil {
		add("checkpoint", string(u.Checkpoint))
	}
	for _, cv := range extra {
		add(cv.col, cv.val)
	}
	err = tx.QueryRowContext(ctx, s.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+`
		WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING cancel_requested`), params...).Scan(&cancelRequested)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%w: job %s", jobs.ErrLeaseLost, id)
	}
	if err != nil {
		return false, fmt.Errorf("%s store: update job %s: %w", s.d.Name, id, err)
	}
	return cancelRequested, s.addEvents(ctx, tx, id, u.Events...)
}

func (s *Store) UpdateRun(ctx context.Context, id, token string, u jobs.RunUpdate) (bool, error) {
	var cancel bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		cancel, err = s.applyRun(ctx, tx, id, token, u)
		return err
	})
	return cancel, err
}

func (s *Store) FinishRun(ctx context.Context, id, token string, u jobs.RunUpdate, status jobs.Status, jobErr *jobs.JobError) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var errJSON sql.NullString
		if jobErr != nil {
			errJSON = sql.NullString{String: mustJSON(jobErr), Valid: true}
		}
		var finished sql.NullInt64
		msg := "released for the next claim"
		if status.Finished() {
			finished = sql.NullInt64{Int64: time.Now().Unix(), Valid: true}
			msg = "job " + string(status)
			if jobErr != nil {
				msg += ": " + jobErr.Code + ": " + jobErr.Message
			}
		} else if status != jobs.StatusQueued {
			return fmt.Errorf("%s store: finish %s with status %q", s.d.Name, id, status)
		}
		level := "info"
		if status == jobs.StatusFailed {
			level = "error"
		}
		u.Events = append(u.Events, jobs.Event{Level: level, Message: msg})
		u.LeaseUntil = time.Time{}
		_, err := s.applyRun(ctx, tx, id, token, u, colVal{"status", string(status)}, colVal{"error", errJSON},
			colVal{"finished_at", finished}, colVal{"lease_owner", ""}, colVal{"lease_token", ""}, colVal{"lease_until", 0})
		return err
	})
}

func (s *Store) PublishOutput(ctx context.Context, id, token string, f jobs.File) (kept jobs.File, removed string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var outputsJSON, leaseToken, status string
		err := tx.QueryRowContext(ctx, s.q(`SELECT outputs, lease_token, status FROM jobs WHERE id = $1`+s.d.RowLock), id).
			Scan(&outputsJSON, &leaseToken, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("job", id)
		}
		if err != nil {
			return fmt.Errorf("%s store: publish to %s: %w", s.d.Name, id, err)
		}
		if leaseToken != token || status != string(jobs.StatusRunning) {
			return fmt.Errorf("%w: job %s", jobs.ErrLeaseLost, id)
		}
		var outputs []string
		if err := json.Unmarshal([]byte(outputsJSON), &outputs); err != nil {
			return fmt.Errorf("%s store: job %s outputs: %w", s.d.Name, id, err)
		}
		old, err := scanFile(tx.QueryRowContext(ctx, s.q(`SELECT `+fileCols+` FROM files WHERE job_id = $1 AND filename = $2`),
			id, f.Filename))
		switch {
		case err == nil && old.SHA256 == f.SHA256 && old.Purpose == f.Purpose:
			kept = old
			if !slices.Contains(outputs, old.ID) {
				outputs = append(outputs, old.ID)
			}
		case err == nil:
			outputs = remove(outputs, old.ID)
			var inUse int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM models WHERE file_id = $1`), old.ID).Scan(&inUse); err != nil {
				return fmt.Errorf("%s store: publish to %s: %w", s.d.Name, id, err)
			}
			if inUse > 0 { // keep the registered model's file, no longer as an output of this name
				_, err = tx.ExecContext(ctx, s.q(`UPDATE files SET job_id = '' WHERE id = $1`), old.ID)
			} else {
				removed = old.ID
				_, err = tx.ExecContext(ctx, s.q(`DELETE FROM files WHERE id = $1`), old.ID)
			}
			if err != nil {
				return fmt.Errorf("%s store: publish to %s: %w", s.d.Name, id, err)
			}
			fallthrough
		case errors.Is(err, sql.ErrNoRows):
			if err := s.insertFile(ctx, tx, f); err != nil {
				return err
			}
			kept = f
			outputs = append(outputs, f.ID)
		default:
			return fmt.Errorf("%s store: publish to %s: %w", s.d.Name, id, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE jobs SET outputs = $2 WHERE id = $1`), id, mustJSON(outputs)); err != nil {
			return fmt.Errorf("%s store: publish to %s: %w", s.d.Name, id, err)
		}
		return s.addEvents(ctx, tx, id, jobs.Event{Level: "info", Message: "published " + kept.Filename,
			Data: json.RawMessage(mustJSON(map[string]any{"file_id": kept.ID, "sha256": kept.SHA256, "bytes": kept.Bytes}))})
	})
	return kept, removed, err
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// ---- models

const modelCols = `name, version, kind, file_id, job_id, sha256, created_at, metadata`

func scanModel(row scanner) (jobs.ModelVersion, error) {
	var v jobs.ModelVersion
	var kind string
	var metadata sql.NullString
	if err := row.Scan(&v.Name, &v.Version, &kind, &v.FileID, &v.JobID, &v.SHA256, &v.CreatedAt, &metadata); err != nil {
		return v, err
	}
	v.Kind = jobs.ModelKind(kind)
	if metadata.Valid {
		if err := json.Unmarshal([]byte(metadata.String), &v.Metadata); err != nil {
			return v, fmt.Errorf("model %s metadata: %w", v.Name, err)
		}
	}
	return v, nil
}

func (s *Store) CreateModelVersion(ctx context.Context, v jobs.ModelVersion) (jobs.ModelVersion, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.ModelLock != "" {
			if _, err := tx.ExecContext(ctx, s.q(s.d.ModelLock), v.Name); err != nil {
				return fmt.Errorf("%s store: lock model %s: %w", s.d.Name, v.Name, err)
			}
		}
		existing, err := scanModel(tx.QueryRowContext(ctx, s.q(`SELECT `+modelCols+` FROM models WHERE name = $1
			ORDER BY version DESC LIMIT 1`), v.Name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("%s store: model %s: %w", s.d.Name, v.Name, err)
		case existing.Kind != v.Kind:
			return fmt.Errorf("%w: model %q is registered as a %s, not a %s", jobs.ErrConflict, v.Name, existing.Kind, v.Kind)
		}
		same, err := scanModel(tx.QueryRowContext(ctx, s.q(`SELECT `+modelCols+` FROM models WHERE name = $1 AND file_id = $2`),
			v.Name, v.FileID))
		if err == nil {
			v = same
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s store: model %s: %w", s.d.Name, v.Name, err)
		}
		v.Version = existing.Version + 1
		var metadata sql.NullString
		if v.Metadata != nil {
			metadata = sql.NullString{String: mustJSON(v.Metadata), Valid: true}
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO models (`+modelCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`),
			v.Name, v.Version, string(v.Kind), v.FileID, v.JobID, v.SHA256, v.CreatedAt, metadata)
		if err != nil {
			return fmt.Errorf("%s store: insert model %s: %w", s.d.Name, v.Name, err)
		}
		return nil
	})
	return v, err
}

func (s *Store) ModelVersion(ctx context.Context, name string, version int) (jobs.ModelVersion, error) {
	stmt, args := `SELECT `+modelCols+` FROM models WHERE name = $1 ORDER BY version DESC LIMIT 1`, []any{name}
	if version > 0 {
		stmt, args = `SELECT `+modelCols+` FROM models WHERE name = $1 AND version = $2`, []any{name, version}
	}
	v, err := scanModel(s.db.QueryRowContext(ctx, s.q(stmt), args...))
	if errors.Is(err, sql.ErrNoRows) {
		if version > 0 {
			return v, fmt.Errorf("%w: model %q version %d", jobs.ErrNotFound, name, version)
		}
		return v, fmt.Errorf("%w: model %q", jobs.ErrNotFound, name)
	}
	if err != nil {
		return v, fmt.Errorf("%s store: model %s: %w", s.d.Name, name, err)
	}
	return v, nil
}

func (s *Store) ModelVersions(ctx context.Context) ([]jobs.ModelVersion, error) {
	return queryAll(ctx, s, "models", scanModel, `SELECT `+modelCols+` FROM models ORDER BY name, version`)
}

func (s *Store) AddActivation(ctx context.Context, a jobs.Activation) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO activations (model, version, serve_as, activated_at) VALUES ($1, $2, $3, $4)`),
		a.Model, a.Version, mustJSON(a.ServeAs), a.ActivatedAt)
	if err != nil {
		return fmt.Errorf("%s store: activation of %s: %w", s.d.Name, a.Model, err)
	}
	return nil
}

func (s *Store) Activations(ctx context.Context) ([]jobs.Activation, error) {
	return queryAll(ctx, s, "activations", func(row scanner) (jobs.Activation, error) {
		var a jobs.Activation
		var serveAs string
		if err := row.Scan(&a.Model, &a.Version, &serveAs, &a.ActivatedAt); err != nil {
			return a, err
		}
		return a, json.Unmarshal([]byte(serveAs), &a.ServeAs)
	}, `SELECT model, version, serve_as, activated_at FROM activations ORDER BY id`)
}
