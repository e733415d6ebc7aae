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
// larger than the last-level cache, with 1 thread and with the bench's thread count, run between blocks of
// decode steps so that both see the same load on a shared machine.
type bandwidthProbe struct {
	buf          []byte
	one, all     *kernels.Pool
	bytes        float64 // bytes read per pass
	time1, timeT time.Duration
	passes       int
}

// newBandwidthProbe allocates the buffer (mib MiB, or 0 for max(1 GiB, 4 x the last-level cache)) and
// touches its pages, so that page faults are not timed.
func newBandwidthProbe(mib, threads int, isa kernels.ISA) (*bandwidthProbe, error) {
	size := int64(mib) << 20
	if mib == 0 {
		size = max(1<<30, 4*lastLevelCache())
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

// pass reads the buffer once with 1 thread and once with all.
func (p *bandwidthProbe) pass() {
	t0 := time.Now()
	p.one.ReadBandwidth(p.buf)
	t1 := time.Now()
	p.all.ReadBandwidth(p.buf)
	p.time1 += t1.Sub(t0)
	p.timeT += time.Since(t1)
	p.bytes = float64(len(p.buf) &^ (1<<20 - 1))
	p.passes++
}

// rates returns the mean read bandwidth over all passes with 1 thread and with all, in bytes per second.
func (p *bandwidthProbe) rates() (one, all float64) {
	if p.passes == 0 {
		return 0, 0
	}
	n := p.bytes * float64(p.passes)
	return n / p.time1.Seconds(), n / p.timeT.Seconds()
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
}

// limit fills a BandwidthLimit from a probe and the measured decode speed.
func (p *bandwidthProbe) limit(weightBytes int64, decodeTokS float64) BandwidthLimit {
	one, all := p.rates()
	r := BandwidthLimit{Bandwidth1GBs: one / 1e9, BandwidthGBs: all / 1e9, BandwidthMiB: len(p.buf) >> 20,
		BandwidthPass: p.passes, WeightBytes: weightBytes}
	if all > 0 && weightBytes > 0 {
		r.LimitTokS = all / float64(weightBytes)
		r.ShareOfLimit = decodeTokS / r.LimitTokS
	}
	return r
}

func (r BandwidthLimit) String() string {
	return fmt.Sprintf("read bandwidth %.1f GB/s (1 thread %.1f GB/s; %d passes over %d MiB between decode steps); "+
		"%.3f GB of weights per token: limit %.2f tok/s, decode at %.2f of it",
		r.BandwidthGBs, r.Bandwidth1GBs, r.BandwidthPass, r.BandwidthMiB, float64(r.WeightBytes)/1e9, r.LimitTokS,
		r.ShareOfLimit)
}
