package weights

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Checkpoint formats, as found in Checkpoint.Format.
const (
	FormatGGUF        = "gguf"
	FormatSafetensors = "safetensors"
	FormatLlama2C     = "llama2c"
)

// Checkpoint is a loaded model file: its metadata and tensors, normalized to GGUF conventions whatever the
// source format. Tensor data is memory-mapped where the format allows it and stays valid until Close.
type Checkpoint struct {
	// Path is the file (or directory, for sharded safetensors) it was read from.
	Path string
	// Format is FormatGGUF, FormatSafetensors or FormatLlama2C.
	Format string
	// Version is the GGUF version for GGUF files, the llama2.c file version (0 for the legacy header-only
	// format) and 0 for safetensors.
	Version uint32
	// Metadata holds the GGUF key/values (for other formats, the keys derived from their headers).
	Metadata *Metadata
	// Tensors lists the tensors in file order.
	Tensors []*Tensor

	maps [][]byte // memory mappings released by Close
}

// Tensor returns the tensor named name, or nil.
func (c *Checkpoint) Tensor(name string) *Tensor {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Close releases the checkpoint's memory mappings. Tensor data read from mapped files must not be used
// afterwards. Close is safe to call more than once.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, m := range c.maps {
		if err := unix.Munmap(m); err != nil {
			errs = append(errs, fmt.Errorf("weights: munmap %s: %w", c.Path, err))
		}
	}
	c.maps = nil
	return errors.Join(errs...)
}

// FormatError reports a malformed checkpoint file: which file, where, and what is wrong with it.
type FormatError struct {
	// Path names the file.
	Path string
	// Offset is the byte offset the problem was found at, or -1 when it has none.
	Offset int64
	// Msg describes the problem.
	Msg string
}

func (e *FormatError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("weights: %s: %s (at byte %d)", e.Path, e.Msg, e.Offset)
	}
	return fmt.Sprintf("weights: %s: %s", e.Path, e.Msg)
}

// mapFile memory-maps path read-only. An empty file gives a nil slice and no mapping.
func mapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if st.IsDir() {
		return nil, &FormatError{Path: path, Offset: -1, Msg: "is a directory"}
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	if size != int64(int(size)) {
		return nil, &FormatError{Path: path, Offset: -1, Msg: "file too large to map"}
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("weights: mmap %s: %w", path, err)
	}
	return data, nil
}

func unmap(data []byte) {
	if data != nil {
		_ = unix.Munmap(data)
	}
}
