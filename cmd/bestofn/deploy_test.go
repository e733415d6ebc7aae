package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// repoPaths rewrites a config's repo-root-relative paths for this package's directory.
func repoPaths(s string) string {
	s = strings.ReplaceAll(s, "../shared/", "../../../shared/")
	return strings.ReplaceAll(s, "reward/testdata/", "../../reward/testdata/")
}

// buildFrom loads config text as `serve --config` does (the embedded models materialized into a cache of the
// test's) and builds the server (remote generators connect to nothing until a request comes).
func buildFrom(t *testing.T, text string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bestofn.yaml")
	if err := os.WriteFile(path, []byte(repoPaths(text)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadServeConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if err := resolveEmbedded(&cfg, logger); err != nil {
		t.Fatal(err)
	}
	srv, closeAll, err := buildServer(cfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	var names []string
	for _, m := range srv.Serving() {
		names = append(names, m.Name)
	}
	return names
}

// TestDeployExamples: the gateway config and the Kubernetes ConfigMap's config load and build; the
// Kubernetes manifests wire readiness to /readyz, liveness to /healthz and Prometheus scraping to /metrics;
// the compose file puts bestofn in front of vLLM.
func TestDeployExamples(t *testing.T) {
	gw, err := os.ReadFile("../../deploy/bestofn-gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(buildFrom(t, string(gw)), ","); got != "llama-gpt4,llama-gpt4-ollama:r1,llama-gpt4:r1,stories,stories:r1" {
		t.Errorf("gateway example serves %s", got)
	}

	f, err := os.Open("../../deploy/kubernetes/bestofn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs[d["kind"].(string)] = d
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim", "PodDisruptionBudget"} {
		if docs[k] == nil {
			t.Fatalf("no %s in the Kubernetes example", k)
		}
	}
	get := func(v any, path ...string) any {
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		}
		return v
	}
	cm := get(docs["ConfigMap"], "data", "bestofn.yaml").(string)
	if os.Getenv("BESTOFN_ORT_LIB") == "" { // the image has ONNX Runtime; this machine may not
		cm = strings.ReplaceAll(cm, "reward_runtime: ort", "reward_runtime: auto")
	}
	if got := strings.Join(buildFrom(t, cm), ","); got != "llama-gpt4,llama-gpt4:r1" {
		t.Errorf("the ConfigMap's config serves %s", got)
	}
	tmpl := get(docs["Deployment"], "spec", "template")
	for k, want := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"} {
		if got := get(tmpl, "metadata", "annotations", k); got != want {
			t.Errorf("pod annotation %s = %v, want %s", k, got, want)
		}
	}
	c := get(tmpl, "spec", "containers").([]any)[0]
	if p := get(c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe %v", p)
	}
	if p := get(c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe %v", p)
	}
	if u := get(tmpl, "spec", "securityContext", "runAsUser"); u != 10001 {
		t.Errorf("runAsUser %v (the image's user is 10001)", u)
	}
	args, _ := yaml.Marshal(get(c, "args"))
	if !bytes.Contains(args, []byte("/etc/bestofn/bestofn.yaml")) {
		t.Errorf("container args %s do not read the ConfigMap", args)
	}

	raw, err := os.ReadFile("../../deploy/compose/docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(compose.Services["bestofn"].Command, " ")
	if !strings.Contains(cmd, "--remote http://vllm:8000/v1") || !strings.Contains(compose.Services["vllm"].Image, "vllm") {
		t.Errorf("compose: bestofn %q, vllm image %q", cmd, compose.Services["vllm"].Image)
	}
}
