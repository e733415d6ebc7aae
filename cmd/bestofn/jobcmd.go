package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstore"
)

// The admin CLI: `bestofn job|files|models SUBCOMMAND` against a running server's /admin/v1 (--server, token
// from BESTOFN_ADMIN_TOKEN or --token-file), and `bestofn job run` in-process.

// subcommand is one verb of job, files or models.
type subcommand struct {
	name, usage string
	run         func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error
}

// cliEnv is what every verb has: its output streams and, once flags are parsed, the client.
type cliEnv struct {
	stdout, stderr io.Writer
	server         *string
	tokenFile      *string
}

func (c *cliEnv) client() (*admin.Client, error) {
	tok := strings.TrimSpace(os.Getenv("BESTOFN_ADMIN_TOKEN"))
	if *c.tokenFile != "" {
		b, err := os.ReadFile(*c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	return admin.NewClient(*c.server, tok, nil), nil
}

// parse parses a verb's flags and positional arguments (names) and makes the client.
func (c *cliEnv) parse(fs *flag.FlagSet, args []string, names ...string) ([]string, *admin.Client, error) {
	pos, err := parseArgs(fs, args, names...)
	if err != nil {
		return nil, nil, err
	}
	cl, err := c.client()
	return pos, cl, err
}

func runSubcommands(group string, subs []subcommand) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		usage := func() {
			fmt.Fprintf(stderr, "usage: bestofn %s VERB [flags]\n\nverbs:\n", group)
			for _, s := range subs {
				fmt.Fprintf(stderr, "  %-9s %s\n", s.name, s.usage)
			}
			fmt.Fprintf(stderr, "\nRun 'bestofn %s VERB -h' for a verb's flags. The server is --server (env BESTOFN_SERVER), the token env BESTOFN_ADMIN_TOKEN.\n", group)
		}
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage()
			if len(args) == 0 {
				return errors.New("missing verb")
			}
			return flag.ErrHelp
		}
		for _, s := range subs {
			if s.name != args[0] {
				continue
			}
			fs := flag.NewFlagSet(group+" "+s.name, flag.ContinueOnError)
			fs.SetOutput(stderr)
			env := &cliEnv{stdout: stdout, stderr: stderr}
			if s.name != "run" { // job run talks to no server
				env.server = fs.String("server", envOr("BESTOFN_SERVER", "http://127.0.0.1:8080"), "server URL (env BESTOFN_SERVER)")
				env.tokenFile = fs.String("token-file", "", "file holding the admin token (default: env BESTOFN_ADMIN_TOKEN)")
			}
			return s.run(ctx, env, fs, args[1:])
		}
		usage()
		return fmt.Errorf("unknown verb %q", args[0])
	}
}

// parseArgs parses flags that may come before or after the positional arguments, and checks their count.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(names) {
		return nil, fmt.Errorf("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(pos))
	}
	return pos, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// paramsArg reads --params: inline JSON, or @FILE.
func paramsArg(s string) (json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	b := []byte(s)
	if strings.HasPrefix(s, "@") {
		var err error
		if b, err = os.ReadFile(s[1:]); err != nil {
			return nil, fmt.Errorf("--params: %w", err)
		}
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--params is not valid JSON: %s", b)
	}
	return json.RawMessage(b), nil
}

// jobOutcome prints the finished job and turns a job that did not succeed into an error.
func jobOutcome(w io.Writer, j jobs.Job) error {
	if err := printJSON(w, j); err != nil {
		return err
	}
	if j.Status != jobs.StatusSucceeded {
		if j.Error != nil {
			return fmt.Errorf("job %s %s: %s: %s", j.ID, j.Status, j.Error.Code, j.Error.Message)
		}
		return fmt.Errorf("job %s %s", j.ID, j.Status)
	}
	return nil
}

// waitJob follows a job with a progress view on stderr until it is finished.
func waitJob(ctx context.Context, c *cliEnv, cl *admin.Client, id string) (jobs.Job, error) {
	pv := newProgressView(c.stderr)
	return cl.Wait(ctx, id, 250*time.Millisecond, pv.update)
}

func jobCommands() []subcommand {
	return []subcommand{
		{"submit", "submit a job: submit TYPE [--params JSON|@FILE] [--wait]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			params := fs.String("params", "", "job params: JSON or @FILE")
			wait := fs.Bool("wait", false, "follow the job's progress until it is finished")
			pos, cl, err := c.parse(fs, args, "TYPE")
			if err != nil {
				return err
			}
			p, err := paramsArg(*params)
			if err != nil {
				return err
			}
			j, err := cl.Submit(ctx, pos[0], p)
			if err != nil {
				return err
			}
			if !*wait {
				return printJSON(c.stdout, j)
			}
			if j, err = waitJob(ctx, c, cl, j.ID); err != nil {
				return err
			}
			return jobOutcome(c.stdout, j)
		}},
		{"list", "list jobs: list [--type T] [--status S]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			typ := fs.String("type", "", "only jobs of this type")
			status := fs.String("status", "", "only jobs in this status (queued, running, succeeded, failed, cancelled)")
			_, cl, err := c.parse(fs, args)
			if err != nil {
				return err
			}
			list, err := cl.Jobs(ctx, jobs.JobFilter{Type: *typ, Status: jobs.Status(*status)})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tPROGRESS\tCREATED")
			for _, j := range list {
				pr := fmt.Sprintf("%d/%d %s", j.Progress.Done, j.Progress.Total, j.Progress.Unit)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Type, j.Status, pr, time.Unix(j.CreatedAt, 0).UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}},
		{"show", "show a job as JSON: show ID", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			j, err := cl.Job(ctx, pos[0])
			if err != nil {
				return err
			}
			return printJSON(c.stdout, j)
		}},
		{"events", "print a job's events: events ID [--follow] [--after SEQ]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			follow := fs.Bool("follow", false, "keep printing events as they come until the job is finished")
			after := fs.Int64("after", 0, "only events after this sequence number")
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			print := func(ev jobs.Event) error {
				line := fmt.Sprintf("%d %s %-7s %s", ev.Seq, time.Unix(ev.CreatedAt, 0).UTC().Format(time.RFC3339), ev.Level, ev.Message)
				if len(ev.Data) > 0 {
					line += " " + string(ev.Data)
				}
				_, err := fmt.Fprintln(c.stdout, line)
				return err
			}
			if *follow {
				_, err := cl.StreamEvents(ctx, pos[0], *after, print)
				return err
			}
			evs, err := cl.Events(ctx, pos[0], *after, 0)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := print(ev); err != nil {
					return err
				}
			}
			return nil
		}},
		{"cancel", "cancel a job: cancel ID", jobVerb(func(ctx context.Context, cl *admin.Client, id string) (jobs.Job, error) { return cl.Cancel(ctx, id) })},
		{"retry", "queue a failed or cancelled job again: retry ID", jobVerb(func(ctx context.Context, cl *admin.Client, id string) (jobs.Job, error) { return cl.Retry(ctx, id) })},
		{"wait", "follow a job's progress until it is finished: wait ID", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			j, err := waitJob(ctx, c, cl, pos[0])
			if err != nil {
				return err
			}
			return jobOutcome(c.stdout, j)
		}},
		{"run", "run one job in this process, without a server: run TYPE [--params JSON|@FILE] [--data-dir DIR]", runJobInProcess},
	}
}

func jobVerb(f func(ctx context.Context, cl *admin.Client, id string) (jobs.Job, error)) func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
	return func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
		pos, cl, err := c.parse(fs, args, "ID")
		if err != nil {
			return err
		}
		j, err := f(ctx, cl, pos[0])
		if err != nil {
			return err
		}
		return printJSON(c.stdout, j)
	}
}

// runJobInProcess is `bestofn job run`: the job runs on a Service of the data directory in this process, with
// the same progress output as `job wait`; Ctrl-C cancels it.
func runJobInProcess(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
	params := fs.String("params", "", "job params: JSON or @FILE")
	pf := &platformFlags{}
	fs.StringVar(&pf.dataDir, "data-dir", envOr("BESTOFN_DATA_DIR", "./bestofn-data"), "data directory (env BESTOFN_DATA_DIR)")
	fs.StringVar(&pf.store, "store", envOr(jobstore.EnvVar, "sqlite"), "job store (see serve -h)")
	fs.IntVar(&pf.threads, "job-threads", defaultJobThreads(), "CPU threads the job may use")
	fs.Int64Var(&pf.maxUpload, "max-upload-bytes", 1<<30, "largest file the job may read or publish")
	pos, err := parseArgs(fs, args, "TYPE")
	if err != nil {
		return err
	}
	p, err := paramsArg(*params)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(pf.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := jobstore.Open(ctx, pf.store, pf.dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pv := newProgressView(c.stderr)
	j, err := jobs.RunJob(ctx, jobs.Config{Store: store, DataDir: pf.dataDir, Types: jobTypes(), Purposes: filePurposes(),
		Threads: pf.threads, MaxFileBytes: pf.maxUpload, Logger: logger}, pos[0], p, pv.update)
	if j.ID == "" {
		return err // nothing ran: bad type or params
	}
	if perr := printJSON(c.stdout, j); perr != nil {
		return perr
	}
	return err
}

func fileCommands() []subcommand {
	return []subcommand{
		{"upload", "upload a file: upload PATH --purpose P [--filename NAME]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			purpose := fs.String("purpose", "", "what the file is for (e.g. a job type's input purpose, model, reward-model)")
			name := fs.String("filename", "", "name to record (default: the path's base name)")
			pos, cl, err := c.parse(fs, args, "PATH")
			if err != nil {
				return err
			}
			f, err := uploadPath(ctx, cl, pos[0], *name, *purpose)
			if err != nil {
				return err
			}
			return printJSON(c.stdout, f)
		}},
		{"list", "list files: list [--purpose P]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			purpose := fs.String("purpose", "", "only files of this purpose")
			_, cl, err := c.parse(fs, args)
			if err != nil {
				return err
			}
			list, err := cl.Files(ctx, *purpose)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tBYTES\tPURPOSE\tFILENAME\tJOB\tSHA256")
			for _, f := range list {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", f.ID, f.Bytes, f.Purpose, f.Filename, f.JobID, f.SHA256)
			}
			return tw.Flush()
		}},
		{"show", "show a file's metadata: show ID", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			f, err := cl.File(ctx, pos[0])
			if err != nil {
				return err
			}
			return printJSON(c.stdout, f)
		}},
		{"download", "download a file's content, checking its sha256: download ID [-o PATH]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			out := fs.String("o", "", "write to this path (default: stdout)")
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			return download(ctx, cl, pos[0], *out, c.stdout)
		}},
		{"delete", "delete a file: delete ID", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			pos, cl, err := c.parse(fs, args, "ID")
			if err != nil {
				return err
			}
			if err := cl.DeleteFile(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "deleted %s\n", pos[0])
			return nil
		}},
	}
}

// uploadPath uploads a file, or a directory (a reward model) as one tar of its regular files.
func uploadPath(ctx context.Context, cl *admin.Client, path, name, purpose string) (jobs.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return jobs.File{}, err
	}
	if name == "" {
		name = filepath.Base(path)
	}
	if !st.IsDir() {
		f, err := os.Open(path)
		if err != nil {
			return jobs.File{}, err
		}
		defer f.Close()
		return cl.UploadFile(ctx, name, purpose, f)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, path)) }()
	defer pr.Close()
	return cl.UploadFile(ctx, name+".tar", purpose, pr)
}

// tarDir writes dir's regular files (not recursive) as a tar stream.
func tarDir(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := func() error {
			f, err := os.Open(filepath.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			return err
		}(); err != nil {
			return err
		}
	}
	return tw.Close()
}

// download writes a file to out (or stdout), to a temporary name renamed into place once its sha256 matches
// the server's.
func download(ctx context.Context, cl *admin.Client, id, out string, stdout io.Writer) error {
	h := sha256.New()
	if out == "" {
		want, err := cl.Download(ctx, id, io.MultiWriter(stdout, h))
		if err != nil {
			return err
		}
		return checkSum(id, want, h.Sum(nil))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	want, err := cl.Download(ctx, id, io.MultiWriter(tmp, h))
	if err == nil {
		err = checkSum(id, want, h.Sum(nil))
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

func checkSum(id, want string, got []byte) error {
	if g := hex.EncodeToString(got); want != "" && g != want {
		return fmt.Errorf("file %s: downloaded sha256 %s, the server says %s", id, g, want)
	}
	return nil
}

func modelCommands() []subcommand {
	return []subcommand{
		{"register", "register a model version: register --name N --kind generator|reward (--file PATH | --file-id ID | --job-id ID [--output NAME])", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			var spec jobs.ModelSpec
			fs.StringVar(&spec.Name, "name", "", "model name")
			kind := fs.String("kind", "", "generator (a GGUF file) or reward (a reward model directory)")
			path := fs.String("file", "", "upload this GGUF file or reward model directory first")
			fs.StringVar(&spec.FileID, "file-id", "", "an uploaded file")
			fs.StringVar(&spec.JobID, "job-id", "", "a job whose output is the model")
			fs.StringVar(&spec.Output, "output", "", "the job's output file name (default: its only model output)")
			_, cl, err := c.parse(fs, args)
			if err != nil {
				return err
			}
			spec.Kind = jobs.ModelKind(*kind)
			if *path != "" {
				purpose := jobs.PurposeModel
				if spec.Kind == jobs.KindReward {
					purpose = jobs.PurposeRewardModel
				}
				f, err := uploadPath(ctx, cl, *path, "", purpose)
				if err != nil {
					return err
				}
				spec.FileID = f.ID
			}
			mv, err := cl.RegisterModel(ctx, spec)
			if err != nil {
				if *path != "" { // the upload was only for this registration: do not leave it behind
					_ = cl.DeleteFile(context.WithoutCancel(ctx), spec.FileID)
				}
				return err
			}
			return printJSON(c.stdout, mv)
		}},
		{"list", "list registered versions, activations and what serves what", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			_, cl, err := c.parse(fs, args)
			if err != nil {
				return err
			}
			ml, err := cl.Models(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tFILE\tJOB\tSHA256")
			for _, v := range ml.Data {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", v.Name, v.Kind, v.Version, v.FileID, v.JobID, v.SHA256)
			}
			fmt.Fprintln(tw, "\nSERVED\tGENERATOR\tREWARD")
			ref := func(m *admin.ServedModel) string {
				switch {
				case m == nil:
					return "-"
				case m.Model == "":
					return m.Path + " (start-up)"
				}
				return fmt.Sprintf("%s v%d", m.Model, m.Version)
			}
			for _, s := range ml.Serving {
				g := s.Generator
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, ref(&g), ref(s.Reward))
			}
			return tw.Flush()
		}},
		{"activate", "hot-swap a version in: activate NAME [--version V] [--serve-as a,b]", func(ctx context.Context, c *cliEnv, fs *flag.FlagSet, args []string) error {
			version := fs.Int("version", 0, "version to activate (0: the latest); an older one rolls back")
			serveAs := fs.String("serve-as", "", "comma-separated served model names (default: all for a generator, the reranking ones for a reward model)")
			pos, cl, err := c.parse(fs, args, "NAME")
			if err != nil {
				return err
			}
			req := admin.ActivateRequest{Version: *version}
			if *serveAs != "" {
				req.ServeAs = strings.Split(*serveAs, ",")
			}
			res, err := cl.Activate(ctx, pos[0], req)
			if err != nil {
				return err
			}
			return printJSON(c.stdout, res)
		}},
	}
}
