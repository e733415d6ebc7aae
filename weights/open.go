package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Open reads a checkpoint, detecting its format from the content: a GGUF file (magic "GGUF"), a safetensors file
// (8-byte header length then a JSON object), a directory holding config.json with model.safetensors or
// model.safetensors.index.json, or a llama2.c .bin checkpoint (anything else whose header is plausible).
func Open(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if st.IsDir() {
		return OpenSafetensors(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	head := make([]byte, 28)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("weights: read %s: %w", path, err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("GGUF")):
		return OpenGGUF(path)
	case looksLikeSafetensors(head):
		return OpenSafetensors(path)
	case filepath.Ext(path) == ".json":
		return OpenSafetensors(filepath.Dir(path))
	case n >= 28:
		return OpenLlama2C(path)
	}
	return nil, &FormatError{Path: path, Offset: -1, Msg: "unrecognized checkpoint format (not GGUF, safetensors or llama2.c)"}
}

// looksLikeSafetensors reports whether head starts with a plausible safetensors header: a little-endian uint64
// length followed by '{'.
func looksLikeSafetensors(head []byte) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	return n >= 2 && n < 1<<32 && head[8] == '{'
}
