package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/bestofn/bestofn/tokenizer"
)

// runTokenize is `bestofn tokenize --model PATH [--no-bos] [--special]`: each line of stdin (UTF-8, without its
// line ending) becomes one line of output, the JSON array of its token ids.
func runTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "tokenizer: a GGUF file, tokenizer.model, tokenizer.json or llama2.c tokenizer.bin")
	noBOS := fs.Bool("no-bos", false, "do not add BOS (by default BOS is added when the vocabulary asks for it)")
	special := fs.Bool("special", false, "parse special tokens written in the text, such as <s> or <|im_end|>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("usage: bestofn tokenize --model PATH [--no-bos] [--special] < text")
	}
	tk, err := tokenizer.Load(*model)
	if err != nil {
		return err
	}
	return tokenizeLines(ctx, tk, os.Stdin, stdout, tk.AddBOSDefault() && !*noBOS, *special)
}

// tokenizeLines writes the ids of each line of r as a JSON array on its own line of w.
func tokenizeLines(ctx context.Context, tk *tokenizer.Tokenizer, r io.Reader, w io.Writer, addBOS, special bool) error {
	br := bufio.NewReaderSize(r, 1<<16)
	bw := bufio.NewWriterSize(w, 1<<16)
	var buf []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				break
			}
			return fmt.Errorf("reading stdin: %w", err)
		}
		line = strings.TrimSuffix(line, "\n")
		line = strings.TrimSuffix(line, "\r")
		buf = append(buf[:0], '[')
		for i, id := range tk.Encode(line, addBOS, special) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		buf = append(buf, ']', '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		if err == io.EOF {
			break
		}
	}
	return bw.Flush()
}
