package tokenizer

import "fmt"

// ParseHFJSON reads an HF tokenizer.json.
func ParseHFJSON(data []byte) (*Tokenizer, error) {
	return nil, fmt.Errorf("%w: tokenizer.json not supported yet", ErrFormat)
}
