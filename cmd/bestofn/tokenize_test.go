package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/tokenizer"
)

func TestTokenizeLines(t *testing.T) {
	tk, err := tokenizer.Load("../../../shared/tokenizers/llama2/tokenizer.model")
	if err != nil {
		t.Fatal(err)
	}
	in := "Hello world\r\n\n<s>你好\nno newline at end"
	var out bytes.Buffer
	if err := tokenizeLines(context.Background(), tk, strings.NewReader(in), &out, true, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	inputs := []string{"Hello world", "", "<s>你好", "no newline at end"}
	if len(lines) != len(inputs) {
		t.Fatalf("%d output lines for %d inputs: %q", len(lines), len(inputs), out.String())
	}
	for i, line := range lines {
		var got []int32
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if want := tk.Encode(inputs[i], true, true); !slices.Equal(got, want) {
			t.Errorf("line %d: %v, want %v", i, got, want)
		}
	}
	// "<s>" parsed as special: BOS, BOS, then the text.
	var third []int32
	_ = json.Unmarshal([]byte(lines[2]), &third)
	if len(third) < 2 || third[0] != 1 || third[1] != 1 {
		t.Errorf("special parsing: %v", third)
	}
}

func TestTokenizeUsage(t *testing.T) {
	var stderr bytes.Buffer
	if err := runTokenize(context.Background(), nil, &bytes.Buffer{}, &stderr); err == nil {
		t.Fatal("no error without --model")
	}
	if err := runTokenize(context.Background(), []string{"--model", "/nonexistent"}, &bytes.Buffer{}, &stderr); err == nil {
		t.Fatal("no error for a missing file")
	}
}
