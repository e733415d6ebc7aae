package weights

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WriteGGUF writes a GGUF v3 file holding md and tensors (in this order) to w. Tensor data is aligned to
// md's general.alignment (a power-of-two uint32) or to DefaultAlignment when absent. Each tensor's Data must be
// exactly the bytes its Type and Shape take.
func WriteGGUF(w io.Writer, md *Metadata, tensors []*Tensor) error {
	return WriteGGUFFunc(w, md, tensors, func(i int, w io.Writer) error {
		_, err := w.Write(tensors[i].Data)
		return err
	})
}

// WriteGGUFFunc is WriteGGUF with tensor data produced on demand: tensors' Data fields are ignored and
// data(i, w) is called once per tensor, in order, to write exactly tensor i's bytes to w. This lets callers
// stream tensors too large to hold all at once.
func WriteGGUFFunc(w io.Writer, md *Metadata, tensors []*Tensor, data func(i int, w io.Writer) error) error {
	if md == nil {
		md = NewMetadata()
	}
	alignment := uint64(DefaultAlignment)
	if v, ok := md.Value("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("weights: write gguf: general.alignment must be a power-of-two uint32, got %v (%T)", v, v)
		}
		alignment = uint64(a)
	}
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<20)}
	e := &ggufEncoder{w: cw}
	e.u32(ggufMagic)
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(md.Len()))
	for _, key := range md.keys {
		e.str(key)
		if err := e.value(md.values[key], 0); err != nil {
			return fmt.Errorf("weights: write gguf: key %q: %w", key, err)
		}
	}
	sizes := make([]uint64, len(tensors))
	offset := uint64(0)
	names := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		if names[t.Name] {
			return fmt.Errorf("weights: write gguf: duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		size, err := tensorBytes(t)
		if err != nil {
			return fmt.Errorf("weights: write gguf: %w", err)
		}
		sizes[i] = uint64(size)
		e.str(t.Name)
		e.u32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			e.u64(uint64(d))
		}
		e.u32(uint32(t.Type))
		e.u64(offset)
		offset += (uint64(size) + alignment - 1) / alignment * alignment
	}
	if e.err != nil {
		return fmt.Errorf("weights: write gguf: %w", e.err)
	}
	if err := cw.pad(alignment); err != nil {
		return fmt.Errorf("weights: write gguf: %w", err)
	}
	for i, t := range tensors {
		start := cw.n
		if err := data(i, cw); err != nil {
			return fmt.Errorf("weights: write gguf: tensor %q: %w", t.Name, err)
		}
		if got := uint64(cw.n - start); got != sizes[i] {
			return fmt.Errorf("weights: write gguf: tensor %q: wrote %d bytes, its type and shape take %d", t.Name, got, sizes[i])
		}
		if err := cw.pad(alignment); err != nil {
			return fmt.Errorf("weights: write gguf: %w", err)
		}
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return fmt.Errorf("weights: write gguf: %w", err)
	}
	return nil
}

// tensorBytes checks t's shape and type and returns the size of its data.
func tensorBytes(t *Tensor) (int, error) {
	if len(t.Shape) == 0 || len(t.Shape) > maxDims {
		return 0, fmt.Errorf("tensor %q has %d dimensions (want 1 to %d)", t.Name, len(t.Shape), maxDims)
	}
	rows := 1
	for _, d := range t.Shape {
		if d <= 0 {
			return 0, fmt.Errorf("tensor %q has shape %v", t.Name, t.Shape)
		}
	}
	for _, d := range t.Shape[1:] {
		rows *= d
	}
	rowBytes, err := t.Type.RowBytes(t.Shape[0])
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return rowBytes * rows, nil
}

// TensorBytes returns the number of data bytes a tensor of type typ and shape takes, or an error for an unknown
// type, a bad shape or a first dimension that is not a whole number of blocks.
func TensorBytes(typ Type, shape []int) (int, error) {
	n, err := tensorBytes(&Tensor{Name: "tensor", Type: typ, Shape: shape})
	if err != nil {
		return 0, fmt.Errorf("weights: %w", err)
	}
	return n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countWriter) pad(alignment uint64) error {
	var zeros [256]byte
	for rem := int((alignment - uint64(c.n)%alignment) % alignment); rem > 0; {
		n := min(rem, len(zeros))
		if _, err := c.Write(zeros[:n]); err != nil {
			return err
		}
		rem -= n
	}
	return nil
}

// ggufEncoder writes little-endian GGUF fields, remembering the first error.
type ggufEncoder struct {
	w   io.Writer
	buf [8]byte
	err error
}

func (e *ggufEncoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *ggufEncoder) u8(v uint8) { e.buf[0] = v; e.write(e.buf[:1]) }
func (e *ggufEncoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.write(e.buf[:2])
}
func (e *ggufEncoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.write(e.buf[:4])
}
func (e *ggufEncoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.write(e.buf[:8])
}
func (e *ggufEncoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

// value writes v's type tag and v.
func (e *ggufEncoder) value(v any, depth int) error {
	t, ok := ggufTypeOf(v)
	if !ok {
		return fmt.Errorf("GGUF cannot hold a %T", v)
	}
	e.u32(t)
	if t == ggufArray {
		return e.array(v, depth+1)
	}
	e.scalar(v)
	return nil
}

func (e *ggufEncoder) scalar(v any) {
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float32:
		e.u32(math.Float32bits(x))
	case float64:
		e.u64(math.Float64bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	}
}

// array writes an array's element type, count and elements (no leading type tag).
func (e *ggufEncoder) array(v any, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("arrays nested deeper than %d", maxNesting)
	}
	switch x := v.(type) {
	case []any:
		e.u32(ggufArray)
		e.u64(uint64(len(x)))
		for _, el := range x {
			if t, _ := ggufTypeOf(el); t != ggufArray {
				return fmt.Errorf("an array of arrays holds a %T", el)
			}
			if err := e.array(el, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []uint8:
		writeArray(e, ggufUint8, x)
	case []int8:
		writeArray(e, ggufInt8, x)
	case []uint16:
		writeArray(e, ggufUint16, x)
	case []int16:
		writeArray(e, ggufInt16, x)
	case []uint32:
		writeArray(e, ggufUint32, x)
	case []int32:
		writeArray(e, ggufInt32, x)
	case []uint64:
		writeArray(e, ggufUint64, x)
	case []int64:
		writeArray(e, ggufInt64, x)
	case []float32:
		writeArray(e, ggufFloat32, x)
	case []float64:
		writeArray(e, ggufFloat64, x)
	case []bool:
		writeArray(e, ggufBool, x)
	case []string:
		writeArray(e, ggufString, x)
	}
	return nil
}

func writeArray[T any](e *ggufEncoder, t uint32, s []T) {
	e.u32(t)
	e.u64(uint64(len(s)))
	for _, v := range s {
		e.scalar(v)
	}
}

// ggufTypeOf maps a Go value to its GGUF value type.
func ggufTypeOf(v any) (uint32, bool) {
	switch v.(type) {
	case uint8:
		return ggufUint8, true
	case int8:
		return ggufInt8, true
	case uint16:
		return ggufUint16, true
	case int16:
		return ggufInt16, true
	case uint32:
		return ggufUint32, true
	case int32:
		return ggufInt32, true
	case uint64:
		return ggufUint64, true
	case int64:
		return ggufInt64, true
	case float32:
		return ggufFloat32, true
	case float64:
		return ggufFloat64, true
	case bool:
		return ggufBool, true
	case string:
		return ggufString, true
	case []any, []uint8, []int8, []uint16, []int16, []uint32, []int32, []uint64, []int64, []float32, []float64,
		[]bool, []string:
		return ggufArray, true
	}
	return 0, false
}
