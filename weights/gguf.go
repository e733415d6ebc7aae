package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// ggufMagic is "GGUF" read as a little-endian uint32.
const ggufMagic = 0x46554747

// DefaultAlignment is the GGUF data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is GGML_MAX_DIMS: a GGUF tensor has 1 to 4 dimensions.
const maxDims = 4

// maxNesting bounds how deeply GGUF arrays of arrays may nest.
const maxNesting = 8

// GGUF metadata value types (gguf_type in gguf.h).
const (
	ggufUint8   uint32 = 0
	ggufInt8    uint32 = 1
	ggufUint16  uint32 = 2
	ggufInt16   uint32 = 3
	ggufUint32  uint32 = 4
	ggufInt32   uint32 = 5
	ggufFloat32 uint32 = 6
	ggufBool    uint32 = 7
	ggufString  uint32 = 8
	ggufArray   uint32 = 9
	ggufUint64  uint32 = 10
	ggufInt64   uint32 = 11
	ggufFloat64 uint32 = 12
)

// ggufScalarSize is the encoded size of each fixed-size value type.
func ggufScalarSize(t uint32) int {
	switch t {
	case ggufUint8, ggufInt8, ggufBool:
		return 1
	case ggufUint16, ggufInt16:
		return 2
	case ggufUint32, ggufInt32, ggufFloat32:
		return 4
	case ggufUint64, ggufInt64, ggufFloat64:
		return 8
	}
	return 0
}

// OpenGGUF reads a GGUF v2 or v3 file. Tensor data points into a read-only memory mapping of the file, released
// by Checkpoint.Close.
func OpenGGUF(path string) (*Checkpoint, error) {
	data, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	ck, err := ParseGGUF(path, data)
	if err != nil {
		unmap(data)
		return nil, err
	}
	if data != nil {
		ck.maps = append(ck.maps, data)
	}
	return ck, nil
}

// ParseGGUF parses a whole GGUF file held in data; name is used in errors and as Checkpoint.Path. The tensors'
// Data slices alias data; strings are copied. Every count, length and offset in the file is checked against
// len(data) before anything is allocated.
func ParseGGUF(name string, data []byte) (*Checkpoint, error) {
	r := &ggufReader{name: name, data: data}
	if len(data) < 4 {
		return nil, r.errf("truncated: %d bytes is too short for a GGUF header", len(data))
	}
	if magic := binary.LittleEndian.Uint32(data); magic != ggufMagic {
		return nil, r.errf("wrong magic %q: not a GGUF file", data[:4])
	}
	r.pos = 4
	version, err := r.u32()
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, r.errAt(4, "GGUF version 1 is not supported (only 2 and 3)")
	case bits.ReverseBytes32(version) == 2 || bits.ReverseBytes32(version) == 3:
		return nil, r.errAt(4, "big-endian GGUF is not supported")
	default:
		return nil, r.errAt(4, fmt.Sprintf("unsupported GGUF version %d", version))
	}
	nTensors, err := r.u64()
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64()
	if err != nil {
		return nil, err
	}
	// A key/value takes at least 13 bytes (key length, type, one byte of value); a tensor info at least 32.
	if nKV > uint64(r.remaining()/13) {
		return nil, r.errAt(16, fmt.Sprintf("absurd metadata count %d for a %d-byte file", nKV, len(data)))
	}
	if nTensors > uint64(r.remaining()/32) {
		return nil, r.errAt(8, fmt.Sprintf("absurd tensor count %d for a %d-byte file", nTensors, len(data)))
	}

	md := NewMetadata()
	for i := uint64(0); i < nKV; i++ {
		at := r.pos
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if _, dup := md.values[key]; dup {
			return nil, r.errAt(at, fmt.Sprintf("duplicate metadata key %q", key))
		}
		typ, err := r.u32()
		if err != nil {
			return nil, err
		}
		v, err := r.value(typ, 0)
		if err != nil {
			return nil, err
		}
		md.Set(key, v)
	}

	alignment := uint64(DefaultAlignment)
	if v, ok := md.Value("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, r.errf("general.alignment must be a power-of-two uint32, got %v (%T)", v, v)
		}
		alignment = uint64(a)
	}

	type info struct {
		t      *Tensor
		offset uint64
		size   uint64
		at     int
	}
	infos := make([]info, 0, nTensors)
	names := make(map[string]bool, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		at := r.pos
		tname, err := r.str()
		if err != nil {
			return nil, err
		}
		if names[tname] {
			return nil, r.errAt(at, fmt.Sprintf("duplicate tensor name %q", tname))
		}
		names[tname] = true
		nDims, err := r.u32()
		if err != nil {
			return nil, err
		}
		if nDims == 0 || nDims > maxDims {
			return nil, r.errAt(r.pos-4, fmt.Sprintf("tensor %q has %d dimensions (want 1 to %d)", tname, nDims, maxDims))
		}
		shape := make([]int, nDims)
		elems := uint64(1)
		for d := range shape {
			n, err := r.u64()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, r.errAt(r.pos-8, fmt.Sprintf("tensor %q has a zero dimension", tname))
			}
			hi, lo := bits.Mul64(elems, n)
			if hi != 0 || lo > uint64(len(data))*8 {
				return nil, r.errAt(r.pos-8, fmt.Sprintf("tensor %q has absurd dimension %d for a %d-byte file", tname, n, len(data)))
			}
			elems = lo
			shape[d] = int(n)
		}
		typ, err := r.u32()
		if err != nil {
			return nil, err
		}
		tt := Type(typ)
		if !tt.Known() {
			return nil, r.errAt(r.pos-4, fmt.Sprintf("tensor %q has unknown type %d", tname, typ))
		}
		rowBytes, err := tt.RowBytes(shape[0])
		if err != nil {
			return nil, r.errAt(r.pos-4, fmt.Sprintf("tensor %q: row of %d values is not a whole number of %s blocks", tname, shape[0], tt))
		}
		size := elems / uint64(shape[0]) * uint64(rowBytes)
		offset, err := r.u64()
		if err != nil {
			return nil, err
		}
		if offset%alignment != 0 {
			return nil, r.errAt(r.pos-8, fmt.Sprintf("tensor %q offset %d is not a multiple of the alignment %d", tname, offset, alignment))
		}
		infos = append(infos, info{t: &Tensor{Name: tname, Type: tt, Shape: shape}, offset: offset, size: size, at: at})
	}

	dataStart := (uint64(r.pos) + alignment - 1) / alignment * alignment
	if nTensors > 0 && dataStart > uint64(len(data)) {
		return nil, r.errf("truncated: tensor data would start at byte %d of a %d-byte file", dataStart, len(data))
	}
	dataLen := uint64(0)
	if dataStart < uint64(len(data)) {
		dataLen = uint64(len(data)) - dataStart
	}
	for _, in := range infos {
		if in.offset > dataLen || in.size > dataLen-in.offset {
			return nil, r.errAt(in.at, fmt.Sprintf("tensor %q (%d bytes at data offset %d) is out of the file's bounds (%d data bytes): truncated file?",
				in.t.Name, in.size, in.offset, dataLen))
		}
		start := dataStart + in.offset
		in.t.Data = data[start : start+in.size : start+in.size]
	}
	order := make([]int, len(infos))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return infos[order[a]].offset < infos[order[b]].offset })
	for k := 1; k < len(order); k++ {
		prev, cur := infos[order[k-1]], infos[order[k]]
		if prev.size > 0 && cur.size > 0 && prev.offset+prev.size > cur.offset {
			return nil, r.errAt(cur.at, fmt.Sprintf("tensor %q overlaps tensor %q", cur.t.Name, prev.t.Name))
		}
	}

	ck := &Checkpoint{Path: name, Format: FormatGGUF, Version: version, Metadata: md, Tensors: make([]*Tensor, len(infos))}
	for i, in := range infos {
		ck.Tensors[i] = in.t
	}
	return ck, nil
}

// ggufReader decodes little-endian GGUF fields from data, reporting errors with the file name and offset.
type ggufReader struct {
	name string
	data []byte
	pos  int
}

func (r *ggufReader) remaining() int { return len(r.data) - r.pos }

func (r *ggufReader) errAt(at int, msg string) error {
	return &FormatError{Path: r.name, Offset: int64(at), Msg: msg}
}

func (r *ggufReader) errf(format string, args ...any) error {
	return &FormatError{Path: r.name, Offset: -1, Msg: fmt.Sprintf(format, args...)}
}

func (r *ggufReader) need(n int, what string) error {
	if n < 0 || n > r.remaining() {
		return r.errAt(r.pos, fmt.Sprintf("truncated: %s needs %d bytes, %d left", what, n, r.remaining()))
	}
	return nil
}

func (r *ggufReader) u32() (uint32, error) {
	if err := r.need(4, "uint32"); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.data[r.pos:])
	r.pos += 4
	return v, nil
}

func (r *ggufReader) u64() (uint64, error) {
	if err := r.need(8, "uint64"); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.data[r.pos:])
	r.pos += 8
	return v, nil
}

func (r *ggufReader) str() (string, error) {
	at := r.pos
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(r.remaining()) {
		return "", r.errAt(at, fmt.Sprintf("truncated: string of %d bytes, %d left", n, r.remaining()))
	}
	s := string(r.data[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

// value reads one metadata value of GGUF type typ; depth counts enclosing arrays.
func (r *ggufReader) value(typ uint32, depth int) (any, error) {
	if typ == ggufArray {
		return r.array(depth + 1)
	}
	if typ == ggufString {
		return r.str()
	}
	size := ggufScalarSize(typ)
	if size == 0 {
		return nil, r.errAt(r.pos-4, fmt.Sprintf("unknown metadata value type %d", typ))
	}
	if err := r.need(size, "metadata value"); err != nil {
		return nil, err
	}
	b := r.data[r.pos:]
	r.pos += size
	switch typ {
	case ggufUint8:
		return b[0], nil
	case ggufInt8:
		return int8(b[0]), nil
	case ggufBool:
		if b[0] > 1 {
			return nil, r.errAt(r.pos-1, fmt.Sprintf("invalid bool value %d", b[0]))
		}
		return b[0] == 1, nil
	case ggufUint16:
		return binary.LittleEndian.Uint16(b), nil
	case ggufInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case ggufUint32:
		return binary.LittleEndian.Uint32(b), nil
	case ggufInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case ggufFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case ggufUint64:
		return binary.LittleEndian.Uint64(b), nil
	case ggufInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // ggufFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

// array reads an array value (element type, count, elements) as a typed slice, or []any for arrays of arrays.
func (r *ggufReader) array(depth int) (any, error) {
	if depth > maxNesting {
		return nil, r.errAt(r.pos, fmt.Sprintf("arrays nested deeper than %d", maxNesting))
	}
	elemType, err := r.u32()
	if err != nil {
		return nil, err
	}
	at := r.pos
	n64, err := r.u64()
	if err != nil {
		return nil, err
	}
	minSize := ggufScalarSize(elemType)
	switch elemType {
	case ggufString:
		minSize = 8
	case ggufArray:
		minSize = 12
	}
	if minSize == 0 {
		return nil, r.errAt(at-4, fmt.Sprintf("unknown array element type %d", elemType))
	}
	if n64 > uint64(r.remaining()/minSize) {
		return nil, r.errAt(at, fmt.Sprintf("truncated or absurd array: %d elements of at least %d bytes, %d bytes left", n64, minSize, r.remaining()))
	}
	n := int(n64)
	switch elemType {
	case ggufString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = r.str(); err != nil {
				return nil, err
			}
		}
		return s, nil
	case ggufArray:
		s := make([]any, n)
		for i := range s {
			if s[i], err = r.array(depth + 1); err != nil {
				return nil, err
			}
		}
		return s, nil
	case ggufBool:
		s := make([]bool, n)
		for i := range s {
			b := r.data[r.pos+i]
			if b > 1 {
				return nil, r.errAt(r.pos+i, fmt.Sprintf("invalid bool value %d", b))
			}
			s[i] = b == 1
		}
		r.pos += n
		return s, nil
	}
	b := r.data[r.pos : r.pos+n*minSize]
	r.pos += n * minSize
	switch elemType {
	case ggufUint8:
		return append([]uint8(nil), b...), nil
	case ggufInt8:
		return decodeSlice(b, 1, func(b []byte) int8 { return int8(b[0]) }), nil
	case ggufUint16:
		return decodeSlice(b, 2, binary.LittleEndian.Uint16), nil
	case ggufInt16:
		return decodeSlice(b, 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) }), nil
	case ggufUint32:
		return decodeSlice(b, 4, binary.LittleEndian.Uint32), nil
	case ggufInt32:
		return decodeSlice(b, 4, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) }), nil
	case ggufFloat32:
		return decodeSlice(b, 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }), nil
	case ggufUint64:
		return decodeSlice(b, 8, binary.LittleEndian.Uint64), nil
	case ggufInt64:
		return decodeSlice(b, 8, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }), nil
	default: // ggufFloat64
		return decodeSlice(b, 8, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }), nil
	}
}

func decodeSlice[T any](b []byte, size int, dec func([]byte) T) []T {
	s := make([]T, len(b)/size)
	for i := range s {
		s[i] = dec(b[i*size:])
	}
	return s
}
