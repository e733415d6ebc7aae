package jobstest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres is a PostgreSQL cluster a test started in a temporary directory, listening on a free loopback port;
// it is stopped and removed when the test ends.
type Postgres struct {
	// DSN connects to its "postgres" database as the superuser.
	DSN string
	mu  sync.Mutex
	n   int // databases made
}

// pgBinDir finds the PostgreSQL server binaries: $BESTOFN_PG_BIN, the newest /usr/lib/postgresql/*/bin, or
// the directory of initdb on $PATH.
func pgBinDir() string {
	if dir := os.Getenv("BESTOFN_PG_BIN"); dir != "" {
		return dir
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres starts a PostgreSQL cluster for the test (initdb and postgres, run as the unprivileged user
// "nobody" when the test runs as root, since postgres refuses root), or skips the test when no server binaries
// are installed.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skip("PostgreSQL server binaries (initdb, postgres) not found: install postgresql or set BESTOFN_PG_BIN")
	}
	root := os.Geteuid() == 0
	base := "" // $TMPDIR; as root, /tmp, which the unprivileged user can reach whatever $TMPDIR is
	if root {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "bestofn-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if root {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("postgres cannot run as root and there is no user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := command("postgres", "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=60")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			t.Logf("postgres log:\n%s", log)
		}
	})
	pg := &Postgres{DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	db, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := db.Ping()
		if err == nil {
			break
		}
		select {
		case exitErr := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			t.Fatalf("postgres exited: %v\n%s", exitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not accept connections within a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pg
}

// NewDatabase creates an empty database in the cluster and returns its DSN.
func (pg *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	pg.mu.Lock()
	pg.n++
	name := fmt.Sprintf("test%d", pg.n)
	pg.mu.Unlock()
	db, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return strings.Replace(pg.DSN, "/postgres?", "/"+name+"?", 1)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
