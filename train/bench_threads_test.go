package train

import (
	"os"
	"strconv"
	"testing"
)

// benchThreads is BESTOFN_BENCH_THREADS, else 0 (one per CPU).
func benchThreads(b *testing.B) int {
	if s := os.Getenv("BESTOFN_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("BESTOFN_BENCH_THREADS=%q is not a thread count", s)
		}
		return n
	}
	return 0
}

func TestBenchShapesParams(t *testing.T) {
	// The parameter counts of the table (and of scripts/bench_train_torch.py's models).
	want := map[string]int{"260k": 260032, "1m": 1154688, "15m": 15191712}
	for _, sh := range BenchShapes() {
		l := newLayout(sh.Config, HeadLM)
		if l.size != want[sh.Name] {
			t.Errorf("%s: %d parameters, want %d", sh.Name, l.size, want[sh.Name])
		}
	}
}
