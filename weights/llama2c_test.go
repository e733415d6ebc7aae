package weights

import (
	"path/filepath"
	"reflect"
	"testing"
)

// TestLlama2CMatchesGGUF checks that stories260K.bin, read by our llama2.c reader, holds the same tensors
// (names, shapes, values) and hyperparameters as stories260K.gguf, converted independently by llama.cpp's tools.
func TestLlama2CMatchesGGUF(t *testing.T) {
	bin, err := Open(filepath.Join(sharedDir, "models/stories260K/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	gg, err := OpenGGUF(filepath.Join(sharedDir, "models/stories260K/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer gg.Close()
	if bin.Format != FormatLlama2C {
		t.Errorf("format %q", bin.Format)
	}
	for _, key := range []string{"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
		"llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count"} {
		a, ok1 := bin.Metadata.Int(key)
		b, ok2 := gg.Metadata.Int(key)
		if !ok1 || !ok2 || a != b {
			t.Errorf("%s: llama2.c %d (%v), gguf %d (%v)", key, a, ok1, b, ok2)
		}
	}
	if eps, _ := bin.Metadata.Float("llama.attention.layer_norm_rms_epsilon"); float32(eps) != 1e-5 {
		t.Errorf("rms eps %g", eps)
	}
	if n, _ := bin.Metadata.Int("llama.context_length"); n != 512 {
		t.Errorf("context_length %d, want seq_len 512", n)
	}
	if n, _ := bin.Metadata.Int("llama.vocab_size"); n != 512 {
		t.Errorf("vocab_size %d", n)
	}
	compared := 0
	for _, g := range gg.Tensors {
		b := bin.Tensor(g.Name)
		if b == nil && g.Name == "output.weight" {
			b = bin.Tensor("token_embd.weight") // tied in the .bin
		}
		if b == nil {
			t.Errorf("gguf tensor %s %v missing from the llama2.c checkpoint", g.Name, g.Shape)
			continue
		}
		if !reflect.DeepEqual(b.Shape, g.Shape) || b.Type != g.Type {
			t.Errorf("%s: llama2.c %s %v, gguf %s %v", g.Name, b.Type, b.Shape, g.Type, g.Shape)
			continue
		}
		bv, gv := float32s(b.Data), float32s(g.Data)
		for i := range gv {
			if bv[i] != gv[i] {
				t.Errorf("%s[%d]: llama2.c %g, gguf %g", g.Name, i, bv[i], gv[i])
				break
			}
		}
		compared++
	}
	if compared != len(gg.Tensors) || len(bin.Tensors) != 1+1+5*9 {
		t.Errorf("compared %d of %d gguf tensors; llama2.c has %d", compared, len(gg.Tensors), len(bin.Tensors))
	}
}

func TestParseLlama2CErrors(t *testing.T) {
	good := make([]byte, 28)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"zeros", good},
		{"size", func() []byte {
			b := make([]byte, 28+100)
			for i, v := range []int32{8, 16, 1, 2, 2, 4, 4} {
				b[4*i] = byte(v)
			}
			return b
		}()},
		{"v2", append([]byte{0x32, 0x34, 0x6b, 0x61, 2, 0, 0, 0}, make([]byte, 300)...)},
	} {
		if _, err := ParseLlama2C(c.name, c.data); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
