package weights

import "errors"

// OpenSafetensors reads a safetensors checkpoint (not built yet).
func OpenSafetensors(path string) (*Checkpoint, error) {
	return nil, errors.New("weights: safetensors not built yet")
}

// OpenLlama2C reads a llama2.c checkpoint (not built yet).
func OpenLlama2C(path string) (*Checkpoint, error) {
	return nil, errors.New("weights: llama2.c not built yet")
}
