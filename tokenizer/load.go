package tokenizer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bestofn/bestofn/weights"
)

// maxTokenizerFile bounds the size of a tokenizer.model, tokenizer.json or tokenizer.bin read into memory.
const maxTokenizerFile = 256 << 20

// Load reads a tokenizer from path, detected by content: a GGUF file (its tokenizer.ggml.* metadata), a
// SentencePiece tokenizer.model, an HF tokenizer.json, or a llama2.c tokenizer.bin. A directory is searched for
// tokenizer.json, then tokenizer.model. Beside a tokenizer.json, a tokenizer_config.json supplies bos_token,
// eos_token, add_bos_token, add_eos_token and chat_template.
func Load(path string) (*Tokenizer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if fi.IsDir() {
		for _, name := range []string{"tokenizer.json", "tokenizer.model"} {
			p := filepath.Join(path, name)
			if _, err := os.Stat(p); err == nil {
				return Load(p)
			}
		}
		return nil, fmt.Errorf("%w: %s: no tokenizer.json or tokenizer.model in directory", ErrFormat, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	var head [4]byte
	n, _ := io.ReadFull(f, head[:])
	if n == 4 && string(head[:]) == "GGUF" {
		ck, err := weights.OpenGGUF(path)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		defer ck.Close()
		t, err := FromMetadata(ck.Metadata)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, nil
	}
	if fi.Size() > maxTokenizerFile {
		return nil, fmt.Errorf("%w: %s: %d bytes is too large for a tokenizer file", ErrFormat, path, fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var t *Tokenizer
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
		var cfg []byte
		if ci, err := os.Stat(cfgPath); err == nil && ci.Size() <= maxTokenizerFile {
			cfg, _ = os.ReadFile(cfgPath)
		}
		t, err = parseHFJSON(data, cfg)
	case strings.HasSuffix(path, ".bin"):
		t, err = ParseLlama2C(data)
	default:
		t, err = ParseSentencePiece(data)
		if err != nil {
			if t2, err2 := ParseLlama2C(data); err2 == nil {
				t, err = t2, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}
