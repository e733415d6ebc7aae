package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bestofn/bestofn/kernels"
)

// bandwidthProbe measures the machine's read bandwidth during `bestofn bench`: passes over a buffer much
// larger than the last-level cache, with 1 thread and with the bench's thread count, run between decode steps
// so that both see the same load on a shared machine. The buffer is read a quarter at a time (each quarter
// as large as the cache at least), the 1-thread and the N-thread pass of one probe on different quarters,
// so that every pass reads memory that has left the cache since it was last read.
type bandwidthProbe struct {
	buf        []byte
	one, all   *kernels.Pool
	stats      [2]passStats // 1 thread, all threads
	passes     int
	decodeBest time.Duration // the fastest decode step seen (see step)
}

// passStats sums the passes of one thread count.
type passStats struct {
	bytes float64
	time  time.Duration
	best  float64 // the highest rate of one pass, bytes per second
}

func (s *passStats) add(bytes int, d time.Duration) {
	s.bytes += float64(bytes)
	s.time += d
	s.best = max(s.best, float64(bytes)/d.Seconds())
}

// rate is the mean bandwidth over all passes, bytes per second.
func (s *passStats) rate() float64 {
	if s.time <= 0 {
		return 0
	}
	return s.bytes / s.time.Seconds()
}

// probeQuarters is the number of parts of the buffer a pass reads one of.
const probeQuarters = 4

// newBandwidthProbe allocates the buffer (mib MiB, or 0 for max(1 GiB, 4 x the last-level cache)) and
// touches its pages, so that page faults are not timed.
func newBandwidthProbe(mib, threads int, isa kernels.ISA) (*bandwidthProbe, error) {
	size := int64(mib) << 20
	if mib == 0 {
		size = max(1<<30, probeQuarters*lastLevelCache())
	}
	one, err := kernels.NewPoolISA(1, isa)
	if err != nil {
		return nil, err
	}
	all, err := kernels.NewPoolISA(threads, isa)
	if err != nil {
		one.Close()
		return nil, err
	}
	p := &bandwidthProbe{buf: make([]byte, size), one: one, all: all}
	for i := 0; i < len(p.buf); i += 4096 {
		p.buf[i] = byte(i >> 12)
	}
	return p, nil
}

// quarter returns part k (mod probeQuarters) of the buffer.
func (p *bandwidthProbe) quarter(k int) []byte {
	q := len(p.buf) / probeQuarters
	k %= probeQuarters
	return p.buf[k*q : (k+1)*q]
}

// pass reads one quarter of the buffer with 1 thread and another with all.
func (p *bandwidthProbe) pass() {
	for i, pool := range []*kernels.Pool{p.one, p.all} {
		b := p.quarter(p.passes + 2*i)
		t0 := time.Now()
		pool.ReadBandwidth(b)
		p.stats[i].add(len(b)&^(1<<20-1), time.Since(t0))
	}
	p.passes++
}

// step records the time of one decode step.
func (p *bandwidthProbe) step(d time.Duration) {
	if p.decodeBest == 0 || d < p.decodeBest {
		p.decodeBest = d
	}
}

func (p *bandwidthProbe) close() { p.one.Close(); p.all.Close() }

// lastLevelCache returns the size of the largest CPU cache Linux reports for CPU 0, or 0.
func lastLevelCache() int64 {
	dirs, _ := filepath.Glob("/sys/devices/system/cpu/cpu0/cache/index*")
	var best int64
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "size"))
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		mult := int64(1)
		switch {
		case strings.HasSuffix(s, "K"):
			mult, s = 1<<10, strings.TrimSuffix(s, "K")
		case strings.HasSuffix(s, "M"):
			mult, s = 1<<20, strings.TrimSuffix(s, "M")
		}
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			best = max(best, v*mult)
		}
	}
	return best
}

// BandwidthLimit is the decode speed as a share of what the read bandwidth allows.
type BandwidthLimit struct {
	Bandwidth1GBs float64 `json:"read_bandwidth_1t_gbs"`
	BandwidthGBs  float64 `json:"read_bandwidth_gbs"` // with the bench's thread count
	BandwidthMiB  int     `json:"read_bandwidth_buffer_mib"`
	BandwidthPass int     `json:"read_bandwidth_passes"`
	WeightBytes   int64   `json:"weight_bytes_per_token"`
	LimitTokS     float64 `json:"limit_tok_s"`    // read bandwidth / weight bytes per token
	ShareOfLimit  float64 `json:"share_of_limit"` // decode tok/s / limit
	// The best figures compare the fastest decode step with the fastest N-thread pass: on a machine shared
	// with other jobs, the closest to what an idle machine gives; on an idle one, close to the means.
	BestBandwidthGBs float64 `json:"read_bandwidth_best_gbs"`
	BestDecodeTokS   float64 `json:"decode_best_tok_s"`
	BestShare        float64 `json:"share_of_limit_best"`
}

// limit fills a BandwidthLimit from the probe and the measured decode speed.
func (p *bandwidthProbe) limit(weightBytes int64, decodeTokS float64) BandwidthLimit {
	all := p.stats[1].rate()
	r := BandwidthLimit{Bandwidth1GBs: p.stats[0].rate() / 1e9, BandwidthGBs: all / 1e9, BandwidthMiB: len(p.buf) >> 20,
		BandwidthPass: p.passes, WeightBytes: weightBytes, BestBandwidthGBs: p.stats[1].best / 1e9}
	if p.decodeBest > 0 {
		r.BestDecodeTokS = 1 / p.decodeBest.Seconds()
	}
	if all > 0 && weightBytes > 0 {
		r.LimitTokS = all / float64(weightBytes)
		r.ShareOfLimit = decodeTokS / r.LimitTokS
		r.BestShare = r.BestDecodeTokS * float64(weightBytes) / p.stats[1].best
	}
	return r
}

func (r BandwidthLimit) String() string {
	return fmt.Sprintf("read bandwidth %.1f GB/s (1 thread %.1f GB/s; %d passes over quarters of %d MiB between decode steps); "+
		"%.3f GB of weights per token: limit %.2f tok/s, decode at %.2f of it (best step and pass: %.2f)",
		r.BandwidthGBs, r.Bandwidth1GBs, r.BandwidthPass, r.BandwidthMiB, float64(r.WeightBytes)/1e9, r.LimitTokS,
		r.ShareOfLimit, r.BestShare)
}
