package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstore"
	"github.com/bestofn/bestofn/jobs/sqlitestore"
	"github.com/bestofn/bestofn/pipeline"
	"github.com/bestofn/bestofn/server"
)

// The job platform of `bestofn serve`: the store, the jobs Service and its workers, the /admin/v1 API and
// the hot swap of registered models.

// platformFlags are serve's flags for jobs and the admin API.
type platformFlags struct {
	dataDir          string
	store            string
	tokenFile        string
	adminAddr        string
	insecureLoopback bool
	workers          int
	threads          int
	maxUpload        int64
	lease            time.Duration
}

// defaultJobThreads leaves one core to serving on machines with few of them.
func defaultJobThreads() int { return max(1, runtime.NumCPU()-1) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func addPlatformFlags(fs *flag.FlagSet) *platformFlags {
	pf := &platformFlags{}
	fs.StringVar(&pf.dataDir, "data-dir", envOr("BESTOFN_DATA_DIR", "./bestofn-data"), "directory of the job store, files and models (env BESTOFN_DATA_DIR)")
	fs.StringVar(&pf.store, "store", envOr(jobstore.EnvVar, "sqlite"), "job store: sqlite (DATA-DIR/"+sqlitestore.DefaultFile+"), sqlite:PATH, or a postgres:// URL shared by replicas (env BESTOFN_STORE)")
	fs.StringVar(&pf.tokenFile, "admin-token-file", "", "file holding the admin API's bearer token (else env BESTOFN_ADMIN_TOKEN; without either the admin API is off)")
	fs.StringVar(&pf.adminAddr, "admin-addr", "", "serve /admin on this address instead of the main one")
	fs.BoolVar(&pf.insecureLoopback, "admin-insecure-loopback", false, "without a token, serve the admin API unauthenticated when it listens on loopback only")
	fs.IntVar(&pf.workers, "job-workers", 1, "jobs run at once (0: none here, the queue is served by other replicas)")
	fs.IntVar(&pf.threads, "job-threads", defaultJobThreads(), "CPU threads one job may use (training); keep it below the core count so serving keeps a core")
	fs.Int64Var(&pf.maxUpload, "max-upload-bytes", 1<<30, "largest file upload to the admin API")
	fs.DurationVar(&pf.lease, "job-lease", 10*time.Second, "how long a job's claim lasts without a heartbeat: a job of a crashed process is taken over after this")
	return pf
}

// adminToken reads the token from --admin-token-file, else BESTOFN_ADMIN_TOKEN; "" means none.
func (pf *platformFlags) adminToken() (string, error) {
	if pf.tokenFile != "" {
		b, err := os.ReadFile(pf.tokenFile)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("admin token file %s is empty", pf.tokenFile)
		}
		return tok, nil
	}
	return strings.TrimSpace(os.Getenv("BESTOFN_ADMIN_TOKEN")), nil
}

// isLoopback reports whether a listen address only accepts loopback connections ("127.0.0.1:8080",
// "[::1]:0", "localhost:8080"; not ":8080" or "0.0.0.0:8080").
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// platform is the running job platform of a serve process.
type platform struct {
	store jobs.Store
	svc   *jobs.Service
	act   *activator
	admin http.Handler // the /admin handler: the API, or admin.Disabled()
	// adminAddr, when not "", is where admin is served on its own listener.
	adminAddr string
	log       *slog.Logger
	// seenActivations is how many recorded activations converge has looked at; it looks again when there are more.
	seenActivations int
	// abLog is the server's --ab-log, the default log of GET /admin/v1/ab/report; gatherer its metrics
	// registry (set by start, before anything is served).
	abLog    string
	gatherer prometheus.Gatherer
}

// newJobService opens the store and the Service of the data directory.
func newJobService(ctx context.Context, pf *platformFlags, workers int, logger *slog.Logger) (jobs.Store, *jobs.Service, error) {
	if err := os.MkdirAll(pf.dataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	store, err := jobstore.Open(ctx, pf.store, pf.dataDir)
	if err != nil {
		return nil, nil, err
	}
	svc, err := jobs.New(jobs.Config{Store: store, DataDir: pf.dataDir, Types: jobTypes(), Purposes: filePurposes(),
		Workers: workers, Threads: pf.threads, Lease: pf.lease, MaxFileBytes: pf.maxUpload, Logger: logger})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return store, svc, nil
}

// openPlatform decides how /admin is exposed and opens the job platform. The platform runs when the admin API
// is on, or when the data directory already exists (queued jobs continue and activations are re-applied even
// while the API is off); otherwise it returns a platform with only admin set (Disabled) and no store.
func openPlatform(ctx context.Context, pf *platformFlags, mainAddr string, cfg serveConfig, logger *slog.Logger) (*platform, error) {
	token, err := pf.adminToken()
	if err != nil {
		return nil, err
	}
	adminListen := mainAddr
	if pf.adminAddr != "" {
		adminListen = pf.adminAddr
	}
	enabled := token != ""
	if !enabled && pf.insecureLoopback {
		if !isLoopback(adminListen) {
			return nil, fmt.Errorf("--admin-insecure-loopback needs a loopback-only address (e.g. 127.0.0.1:8080), not %q; or set BESTOFN_ADMIN_TOKEN", adminListen)
		}
		enabled = true
		logger.Warn("admin API without authentication (loopback only)", "addr", adminListen)
	}
	p := &platform{admin: admin.Disabled(), adminAddr: pf.adminAddr, log: logger, abLog: cfg.ABLog.Path}
	if !enabled {
		logger.Info("admin API off (/admin answers 404): set BESTOFN_ADMIN_TOKEN or --admin-token-file to turn it on")
	}
	if _, err := os.Stat(pf.dataDir); !enabled && err != nil {
		return p, nil
	}
	workers := pf.workers
	if workers <= 0 {
		workers = -1 // jobs.Config: negative runs none (0 would mean 1)
	}
	p.store, p.svc, err = newJobService(ctx, pf, workers, logger)
	if err != nil {
		return nil, err
	}
	p.act = newActivator(cfg, logger)
	if enabled {
		h, err := admin.New(admin.Config{Service: p.svc, Activator: p.act, ABReports: p, Token: token, MaxUploadBytes: pf.maxUpload,
			Logger: logger, Done: ctx.Done()})
		if err != nil {
			p.close()
			return nil, err
		}
		p.admin = h
	}
	return p, nil
}

// ABReport implements admin.ABReporter: the query as an ab-report job's params, the server's --ab-log when it
// names no log, stored files and registered models of this platform, latency from this server's histograms.
func (p *platform) ABReport(ctx context.Context, query url.Values) (any, error) {
	params, err := pipeline.ParseABReportQuery(query)
	if err != nil {
		return nil, err
	}
	env := pipeline.ABReportEnv{DefaultLog: p.abLog, OpenFile: p.svc.OpenFile, ModelPath: p.svc.ModelPath}
	if p.gatherer != nil {
		env.Metrics = pipeline.GatheredMetrics(p.gatherer)
	}
	return env.Report(ctx, params, pipeline.Options{})
}

// activationPoll is how often a serve process looks for activations recorded by other replicas.
const activationPoll = 5 * time.Second

// start re-applies the recorded activations to srv, starts the workers, and keeps following activations
// recorded by other replicas of a shared store until ctx is done.
func (p *platform) start(ctx context.Context, srv *server.Server) error {
	if p.svc == nil {
		return nil
	}
	p.act.srv = srv
	p.gatherer = srv.Gatherer()
	p.converge(ctx)
	if err := p.svc.Start(ctx); err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(activationPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				p.converge(ctx)
			}
		}
	}()
	return nil
}

// activationKey is a served name and a model kind: the latest activation of each (a generator and a reward
// model activated for one name both count) is what should serve.
type activationKey struct {
	name string
	kind jobs.ModelKind
}

// converge activates, for each (served name, kind), the latest recorded activation when that version is not
// what serves it now: all of them at start-up, and those another replica recorded later. A version that fails
// to load is logged once and the serving model stays.
func (p *platform) converge(ctx context.Context) {
	all, err := p.store.Activations(ctx)
	if err != nil {
		p.log.Error("activations: not re-applied", "err", err)
		return
	}
	if len(all) == p.seenActivations {
		return
	}
	versions, _, err := p.svc.Models(ctx)
	if err != nil {
		p.log.Error("activations: not re-applied", "err", err)
		return
	}
	p.seenActivations = len(all)
	kind := map[string]jobs.ModelKind{}
	for _, v := range versions {
		kind[v.Name] = v.Kind
	}
	latest := map[activationKey]int{}
	for i, a := range all {
		for _, n := range a.ServeAs {
			latest[activationKey{n, kind[a.Model]}] = i
		}
	}
	serving := map[string]admin.Served{}
	for _, s := range p.act.Serving() {
		serving[s.Name] = s
	}
	for i, a := range all {
		var names []string
		for _, n := range a.ServeAs {
			s, served := serving[n]
			now := s.Generator
			if kind[a.Model] == jobs.KindReward {
				now = admin.ServedModel{}
				if s.Reward != nil {
					now = *s.Reward
				}
			}
			// Not older than a switch made here: that switch may replace it and not be recorded yet (two replicas
			// activating one name within the same second may then disagree until the next activation).
			stale := a.ActivatedAt <= p.act.swappedAt(n, kind[a.Model])
			if latest[activationKey{n, kind[a.Model]}] == i && served && !stale && (now.Model != a.Model || now.Version != a.Version) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		path, mv, err := p.svc.ModelPath(ctx, a.Model, a.Version)
		if err == nil {
			_, err = p.act.Activate(ctx, mv, path, names)
		}
		if err != nil {
			p.log.Error("recorded activation not applied; the serving model stays", "model", a.Model, "version", a.Version, "serve_as", names, "err", err)
			continue
		}
		p.log.Info("recorded activation applied", "model", a.Model, "version", a.Version, "serve_as", names)
	}
}

// serveAdmin serves /admin on its own listener until ctx is done; it returns at once when the admin API
// shares the main listener.
func (p *platform) serveAdmin(ctx context.Context, stdout io.Writer, logger *slog.Logger) (stop func(), err error) {
	if p.adminAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", p.adminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	hs := &http.Server{Handler: p.admin, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("serving the admin API", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "bestofn: admin API on %s\n", ln.Addr())
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}, nil
}

// close stops the workers (running jobs are interrupted and left for the next claim), then the store, then
// the models activated at run time.
func (p *platform) close() {
	if p.svc != nil {
		if err := p.svc.Close(); err != nil {
			p.log.Warn("jobs: close", "err", err)
		}
	}
	if p.store != nil {
		if err := p.store.Close(); err != nil {
			p.log.Warn("jobs store: close", "err", err)
		}
	}
	if p.act != nil {
		p.act.close()
	}
}
