package train

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// A training checkpoint file (what a killed run resumes from):
//
//	"BONTRAIN"            8 bytes
//	version               uint32 (stateVersion)
//	header length         uint32, then that many bytes of JSON (stateHeader)
//	arrays                float32 little-endian, in header.Arrays order and lengths
//	crc32                 uint32 (Castagnoli) of everything before it
//
// It is written to a temporary file in the same directory, fsynced, renamed over the old one and the
// directory fsynced, so a crash leaves either the old checkpoint or the new one, never a torn file.

const (
	stateMagic   = "BONTRAIN"
	stateVersion = 1
)

// ErrCheckpointMismatch is wrapped by the error of resuming from a checkpoint of another run (another
// model shape, data set or configuration).
var ErrCheckpointMismatch = errors.New("train: checkpoint belongs to another run")

// stateHeader is a checkpoint's JSON header.
type stateHeader struct {
	// Fingerprint identifies the run (loop kind, configuration, model shape, data); resuming checks it.
	Fingerprint string    `json:"fingerprint"`
	NumParams   int       `json:"num_params"`
	OptSteps    int       `json:"optimizer_steps"`
	Loop        loopState `json:"loop"`
	Arrays      []string  `json:"arrays"` // names of the arrays that follow, each NumParams values
}

// saveState writes the checkpoint of a loop at path.
func saveState(path string, h stateHeader, arrays [][]float32) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	hdr, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	var b [8]byte
	w.WriteString(stateMagic)
	binary.LittleEndian.PutUint32(b[:4], stateVersion)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(hdr)))
	w.Write(b[:])
	w.Write(hdr)
	buf := make([]byte, 4<<10)
	for _, a := range arrays {
		for lo := 0; lo < len(a); lo += len(buf) / 4 {
			chunk := a[lo:min(lo+len(buf)/4, len(a))]
			for i, v := range chunk {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			w.Write(buf[:4*len(chunk)])
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	binary.LittleEndian.PutUint32(b[:4], crc.Sum32())
	if _, err := f.Write(b[:4]); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("train: checkpoint: sync %s: %w", dir, err)
		}
	}
	return nil
}

// savedState is a checkpoint read by readState: its header and the raw bytes of its arrays.
type savedState struct {
	stateHeader
	arrays []byte
}

// readState reads and checks a checkpoint (magic, version, checksum, sizes) without applying it.
func readState(path string) (*savedState, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("train: checkpoint: %w", err)
	}
	bad := func(msg string) error { return fmt.Errorf("train: checkpoint %s: %s", path, msg) }
	if len(raw) < len(stateMagic)+12 || string(raw[:len(stateMagic)]) != stateMagic {
		return nil, bad("not a training checkpoint")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != sum {
		return nil, bad("checksum mismatch (truncated or corrupt file)")
	}
	p := body[len(stateMagic):]
	if v := binary.LittleEndian.Uint32(p); v != stateVersion {
		return nil, bad(fmt.Sprintf("version %d, this build reads %d", v, stateVersion))
	}
	n := int(binary.LittleEndian.Uint32(p[4:]))
	p = p[8:]
	if n > len(p) {
		return nil, bad("header runs past the end")
	}
	s := &savedState{}
	if err := json.Unmarshal(p[:n], &s.stateHeader); err != nil {
		return nil, bad(err.Error())
	}
	s.arrays = p[n:]
	if s.NumParams < 0 || len(s.arrays) != 4*s.NumParams*len(s.Arrays) {
		return nil, bad(fmt.Sprintf("holds %d bytes of arrays, want %d", len(s.arrays), 4*s.NumParams*len(s.Arrays)))
	}
	return s, nil
}

// array copies the saved array named name into dst and reports whether the checkpoint has it.
func (s *savedState) array(name string, dst []float32) bool {
	for i, a := range s.Arrays {
		if a != name {
			continue
		}
		p := s.arrays[4*s.NumParams*i:]
		for j := range dst[:s.NumParams] {
			dst[j] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*j:]))
		}
		return true
	}
	return false
}
