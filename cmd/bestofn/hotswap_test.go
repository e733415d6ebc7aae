package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
)

// negatedRewardModel copies tiny-rm into a temporary directory with the ONNX initializers of its linear head
// (head.weight, head.bias) negated in place: the copy's score of every input is exactly minus the original's,
// an independent check that the swapped-in reward model is the one scoring.
func negatedRewardModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "model.onnx"} {
		b, err := os.ReadFile(filepath.Join(serveTestReward, name))
		if err != nil {
			t.Skip("reward test model missing: ", err)
		}
		if name == "model.onnx" {
			if n := negateHead(b); n != 2 {
				t.Fatalf("negated %d head initializers, want 2 (head.weight, head.bias)", n)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// negateHead flips the sign of every float32 in the raw_data of the initializers named head.weight and
// head.bias of an ONNX ModelProto (graph = field 7, GraphProto.initializer = 5, TensorProto.name = 8,
// raw_data = 9), in place: the slices protowire returns alias b. It returns how many it changed.
func negateHead(b []byte) int {
	n := 0
	walkFields(b, func(num protowire.Number, v []byte) {
		if num != 7 {
			return
		}
		walkFields(v, func(num protowire.Number, v []byte) {
			if num != 5 {
				return
			}
			var name string
			var raw []byte
			walkFields(v, func(num protowire.Number, v []byte) {
				switch num {
				case 8:
					name = string(v)
				case 9:
					raw = v
				}
			})
			if name == "head.weight" || name == "head.bias" {
				for i := 0; i+4 <= len(raw); i += 4 {
					f := math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))
					binary.LittleEndian.PutUint32(raw[i:], math.Float32bits(-f))
				}
				n++
			}
		})
	})
	return n
}

// walkFields calls f with each length-delimited field of a protobuf message.
func walkFields(b []byte, f func(num protowire.Number, v []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return
			}
			f(num, v)
			n = m
		} else if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return
		}
		b = b[n:]
	}
}

// completion asks for a completion and returns the status, the answer and the candidates' scores by index.
func completion(t *testing.T, url, model string, seed, n int) (int, string, map[int]float64) {
	code, text, scores, _ := completionCands(t, url, model, seed, n)
	return code, text, scores
}

// greedyText is model's greedy continuation of "Once upon a time" (12 tokens); anything but a 200 with some
// text fails the test, so that neither an error body nor an empty answer passes for "not the story" or for
// "a prefix of the story".
func greedyText(t *testing.T, url, model string) string {
	t.Helper()
	code, text, _ := completion(t, url, model, 0, 1)
	if code != http.StatusOK || text == "" {
		t.Fatalf("greedy completion of %s: status %d, text %q", model, code, text)
	}
	return text
}

// completionCands is completion that also returns the candidates' texts by index.
func completionCands(t *testing.T, url, model string, seed, n int) (int, string, map[int]float64, map[int]string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":12,"temperature":%d,"seed":%d,"best_of":%d,"return_candidates":true}`,
		model, min(seed, 1), seed, n)
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("completion: %v", err)
		return 0, "", nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(b), nil, nil
	}
	var out struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
		Candidates []struct {
			Index int      `json:"index"`
			Score *float64 `json:"score"`
			Text  string   `json:"text"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Choices) == 0 {
		t.Errorf("completion body %s: %v", b, err)
		return resp.StatusCode, "", nil, nil
	}
	scores, texts := map[int]float64{}, map[int]string{}
	for _, c := range out.Candidates {
		if c.Score != nil {
			scores[c.Index] = *c.Score
		}
		texts[c.Index] = c.Text
	}
	return resp.StatusCode, out.Choices[0].Text, scores, texts
}

// Hot swap under load: two reward model versions (tiny-rm and its negated copy) and two generators
// (stories260K and a `bestofn synth` GGUF) are registered and activated while clients keep sending /v1
// requests: every request answers 200, scores switch to exactly minus the old ones, the generator's text
// switches, rollback restores both, a version that fails to load changes nothing, and after a restart the
// last activation of each kind is in effect again.
func TestProcessHotSwap(t *testing.T) {
	bin := bestofnBinary(t)
	if _, err := os.Stat(serveTestReward); err != nil {
		t.Skip("reward test model missing: ", err)
	}
	tmp := t.TempDir()
	synth := filepath.Join(tmp, "synth.gguf")
	if out, err := runCmd(bin, "synth", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "128",
		"--vocab", "320", "--ctx", "256", "--type", "F32", synth); err != nil {
		t.Fatalf("synth: %v\n%s", err, out)
	}
	negated := negatedRewardModel(t)
	dataDir := filepath.Join(tmp, "data")
	p := startServe(t, dataDir, tokenEnv, "--reward-model", serveTestReward)
	c := p.client()
	ctx := context.Background()

	register := func(name string, kind jobs.ModelKind, path string) jobs.ModelVersion {
		t.Helper()
		purpose := jobs.PurposeModel
		if kind == jobs.KindReward {
			purpose = jobs.PurposeRewardModel
		}
		f, err := uploadPath(ctx, c, path, "", purpose)
		if err != nil {
			t.Fatal(err)
		}
		mv, err := c.RegisterModel(ctx, jobs.ModelSpec{Name: name, Kind: kind, FileID: f.ID})
		if err != nil {
			t.Fatal(err)
		}
		return mv
	}
	register("gen", jobs.KindGenerator, serveTestModel)
	register("gen", jobs.KindGenerator, synth)
	register("rm", jobs.KindReward, serveTestReward)
	if mv := register("rm", jobs.KindReward, negated); mv.Version != 2 {
		t.Fatalf("second reward version is %d", mv.Version)
	}
	// A GGUF cut short, and tiny-rm's directory with reward/testdata's model of the wrong output shape.
	brokenGGUF := filepath.Join(tmp, "broken.gguf")
	stories, _ := os.ReadFile(serveTestModel)
	os.WriteFile(brokenGGUF, stories[:4096], 0o644)
	register("broken", jobs.KindGenerator, brokenGGUF)
	brokenRM := filepath.Join(tmp, "broken-rm")
	os.Mkdir(brokenRM, 0o755)
	for name, from := range map[string]string{"config.json": "config.json", "tokenizer.json": "tokenizer.json", "model.onnx": "../bad_output.onnx"} {
		b, err := os.ReadFile(filepath.Join(serveTestReward, from))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(brokenRM, name), b, 0o644)
	}
	register("broken-rm", jobs.KindReward, brokenRM)

	const seed = 7
	storyText := greedyText(t, p.url, "llama-gpt4")
	if !strings.HasPrefix(greedyStory, storyText) {
		t.Fatalf("start-up generator's greedy text %q", storyText)
	}
	_, _, before := completion(t, p.url, "llama-gpt4:r1", seed, 5)
	if len(before) != 5 {
		t.Fatalf("scores before the swap: %v", before)
	}

	// Load: clients sending B and R1 requests all along.
	var total, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			models := []string{"llama-gpt4", "llama-gpt4:r1", "llama-gpt4:ab"}
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				code, text, _ := completion(t, p.url, models[(i+k)%3], 1+k, 1+(k%3))
				total.Add(1)
				if code != 200 {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", code, text))
					failMu.Unlock()
				}
			}
		}(i)
	}
	activate := func(name string, version int, serveAs ...string) {
		t.Helper()
		if _, err := c.Activate(ctx, name, admin.ActivateRequest{Version: version, ServeAs: serveAs}); err != nil {
			t.Fatalf("activate %s v%d: %v\n%s", name, version, err, p.stderr)
		}
	}
	checkScores := func(what string, sign float64) {
		t.Helper()
		_, _, got := completion(t, p.url, "llama-gpt4:r1", seed, 5)
		for i, s := range before {
			if g, ok := got[i]; !ok || math.Abs(g-sign*s) > 1e-4 {
				t.Errorf("%s: candidate %d scored %v, want %v", what, i, got[i], sign*s)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)

	activate("rm", 2)
	checkScores("after activating the negated reward model", -1)
	var ae *admin.APIError
	if _, err := c.Activate(ctx, "broken", admin.ActivateRequest{}); !asAPIError(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		t.Errorf("activating a file that is no GGUF: %v, want 422", err)
	}
	if _, err := c.Activate(ctx, "broken-rm", admin.ActivateRequest{}); !asAPIError(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		t.Errorf("activating a directory that is no reward model: %v, want 422", err)
	}
	if _, err := c.Activate(ctx, "gen", admin.ActivateRequest{Version: 1, ServeAs: []string{"llama-gpt4:ab"}}); !asAPIError(err, &ae) || ae.Status != 400 || ae.Param != "serve_as" {
		t.Errorf("activating for an experiment: %v, want 400 serve_as", err)
	}
	checkScores("after failed activations", -1)
	activate("gen", 2)
	if text := greedyText(t, p.url, "llama-gpt4"); strings.HasPrefix(greedyStory, text) {
		t.Errorf("after activating the synthetic generator the text is still the story: %q", text)
	}

	// Rollback.
	activate("gen", 1)
	if text := greedyText(t, p.url, "llama-gpt4"); text != storyText {
		t.Errorf("after rolling the generator back: %q, want %q", text, storyText)
	}
	activate("rm", 1)
	checkScores("after rolling the reward model back", 1)

	// Leave the synthetic generator and the negated reward model active for the restart.
	activate("gen", 2)
	activate("rm", 2, "llama-gpt4:r1")
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || total.Load() < 10 {
		t.Errorf("%d of %d requests under hot swaps failed: %v", failed.Load(), total.Load(), failures)
	}
	t.Logf("%d requests during 8 activations, all 200", total.Load())
	waitFor(t, "a retired model to be closed", 10*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "hot swap: retired model closed")
	})
	// gen v2 was activated twice: its engine gauges are there once, and /metrics still gathers.
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Count(string(mb), `bestofn:kv_cache_blocks_total{engine="gen:v2"}`) != 1 {
		t.Errorf("/metrics: %d, gen:v2 gauge %d times", resp.StatusCode, strings.Count(string(mb), `bestofn:kv_cache_blocks_total{engine="gen:v2"}`))
	}

	ml, err := c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ml.Serving {
		if s.Generator.Model != "gen" || s.Generator.Version != 2 {
			t.Errorf("%s serves generator %+v, want gen v2", s.Name, s.Generator)
		}
	}
	p.kill()

	p2 := startServe(t, dataDir, tokenEnv, "--reward-model", serveTestReward)
	if text := greedyText(t, p2.url, "llama-gpt4"); strings.HasPrefix(greedyStory, text) {
		t.Errorf("after a restart the synthetic generator is not back: %q\n%s", text, p2.stderr)
	}
	// The reward model's last activation (v2 for :r1) survived the generator's later one: its scores are
	// minus tiny-rm's own, computed here in-process.
	_, _, got, texts := completionCands(t, p2.url, "llama-gpt4:r1", seed, 5)
	if len(got) != 5 {
		t.Fatalf("scores after restart: %v", got)
	}
	rm, err := reward.Load(serveTestReward, reward.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	for i, text := range texts {
		want, err := rm.Score(ctx, "Once upon a time", []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got[i]+float64(want[0])) > 1e-4 {
			t.Errorf("after restart candidate %d (%q) scored %v, want %v (negated tiny-rm)", i, text, got[i], -want[0])
		}
	}
	ml, err = p2.client().Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ml.Serving {
		if s.Name == "llama-gpt4:r1" && (s.Reward == nil || s.Reward.Model != "rm" || s.Reward.Version != 2) {
			t.Errorf("after restart %s has reward model %+v, want rm v2", s.Name, s.Reward)
		}
		if s.Name == "llama-gpt4" && (s.Reward == nil || s.Reward.Model != "rm" || s.Reward.Version != 1) {
			t.Errorf("after restart %s has reward model %+v, want rm v1 (its last reward activation)", s.Name, s.Reward)
		}
	}
}

func runCmd(bin string, args ...string) ([]byte, error) {
	return exec.Command(bin, args...).CombinedOutput()
}
