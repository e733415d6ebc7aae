package weights

import "strconv"

// Type is a GGML tensor element type, numbered as in ggml.h (the numbers are part of the GGUF format).
type Type uint32

// GGML tensor types. Only those listed here are read; any other number in a file is an error.
const (
	TypeF32  Type = 0
	TypeF16  Type = 1
	TypeQ4_0 Type = 2
	TypeQ4_1 Type = 3
	TypeQ5_0 Type = 6
	TypeQ5_1 Type = 7
	TypeQ8_0 Type = 8
	TypeQ4_K Type = 12
	TypeQ5_K Type = 13
	TypeQ6_K Type = 14
	TypeQ8_K Type = 15
	TypeBF16 Type = 30
)

// Tensor is one named tensor of a checkpoint.
type Tensor struct {
	// Name is the GGUF tensor name, e.g. "blk.3.ffn_gate.weight".
	Name string
	// Type is the element type of Data.
	Type Type
	// Shape lists dimensions in GGML order: Shape[0] is the contiguous (fastest-varying) dimension. A weight
	// matrix W of a layer y = W x with len(y) = out and len(x) = in has Shape [in, out]: out rows of in elements.
	Shape []int
	// Data holds the raw bytes in Type's block layout, rows one after another. For GGUF files it points into a
	// read-only memory mapping: never write to it.
	Data []byte
}

// typeInfo describes one block layout: elems values stored in bytes bytes.
type typeInfo struct {
	name  string
	elems int
	bytes int
}

var typeInfos = map[Type]typeInfo{
	TypeF32:  {"F32", 1, 4},
	TypeF16:  {"F16", 1, 2},
	TypeBF16: {"BF16", 1, 2},
	TypeQ4_0: {"Q4_0", 32, 18},
	TypeQ4_1: {"Q4_1", 32, 20},
	TypeQ5_0: {"Q5_0", 32, 22},
	TypeQ5_1: {"Q5_1", 32, 24},
	TypeQ8_0: {"Q8_0", 32, 34},
	TypeQ4_K: {"Q4_K", 256, 144},
	TypeQ5_K: {"Q5_K", 256, 176},
	TypeQ6_K: {"Q6_K", 256, 210},
	TypeQ8_K: {"Q8_K", 256, 292},
}

// Known reports whether t is a type this package reads.
func (t Type) Known() bool { _, ok := typeInfos[t]; return ok }

// String returns the GGML name of t, e.g. "Q8_0", or "type(N)" for an unknown type.
func (t Type) String() string {
	if info, ok := typeInfos[t]; ok {
		return info.name
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// BlockSize is the number of values in one block of t (1 for float types); 0 for an unknown type.
func (t Type) BlockSize() int { return typeInfos[t].elems }

// BlockBytes is the size in bytes of one block of t; 0 for an unknown type.
func (t Type) BlockBytes() int { return typeInfos[t].bytes }

// RowBytes returns the size in bytes of n values of type t, or an error when t is unknown or n is not a whole
// number of blocks.
func (t Type) RowBytes(n int) (int, error) {
	info, ok := typeInfos[t]
	if !ok {
		return 0, &TypeError{Type: t}
	}
	if n < 0 || n%info.elems != 0 {
		return 0, &BlockError{Type: t, N: n}
	}
	return n / info.elems * info.bytes, nil
}

// TypeError reports a tensor type this package does not read.
type TypeError struct{ Type Type }

func (e *TypeError) Error() string { return "weights: unknown tensor type " + e.Type.String() }

// BlockError reports a value count that is not a whole number of blocks of the type.
type BlockError struct {
	Type Type
	N    int
}

func (e *BlockError) Error() string {
	return "weights: " + strconv.Itoa(e.N) + " values is not a whole number of " + e.Type.String() + " blocks of " +
		strconv.Itoa(e.Type.BlockSize())
}

// NumElements is the product of the tensor's dimensions.
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}
