package weights

import (
	"fmt"
	"math"
)

// Metadata is an ordered set of GGUF key/value pairs. Values keep their GGUF type as a Go type:
// uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32, float64, bool, string, or an array of one
// of them as a slice of that type ([]uint8 ... []string), and nested arrays as []any whose elements are arrays.
// The zero value is not usable: call NewMetadata.
type Metadata struct {
	keys   []string
	values map[string]any
}

// NewMetadata returns an empty Metadata.
func NewMetadata() *Metadata { return &Metadata{values: make(map[string]any)} }

// Set stores v under key, keeping the key's first position if it exists already, else appending it. A Go int
// is stored as int64 and []int as []int64 (GGUF has no machine-sized integer); other values are stored as
// given, and WriteGGUF reports a value whose type GGUF cannot hold.
func (m *Metadata) Set(key string, v any) {
	switch x := v.(type) {
	case int:
		v = int64(x)
	case []int:
		s := make([]int64, len(x))
		for i, e := range x {
			s[i] = int64(e)
		}
		v = s
	}
	if _, ok := m.values[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.values[key] = v
}

// Delete removes key; it does nothing when key is absent.
func (m *Metadata) Delete(key string) {
	if _, ok := m.values[key]; !ok {
		return
	}
	delete(m.values, key)
	for i, k := range m.keys {
		if k == key {
			m.keys = append(m.keys[:i:i], m.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in order. The caller may modify the returned slice.
func (m *Metadata) Keys() []string { return append([]string(nil), m.keys...) }

// Len is the number of keys.
func (m *Metadata) Len() int { return len(m.keys) }

// Value returns the value stored under key.
func (m *Metadata) Value(key string) (any, bool) {
	v, ok := m.values[key]
	return v, ok
}

// String returns the string stored under key; ok is false when key is absent or not a string.
func (m *Metadata) String(key string) (string, bool) {
	s, ok := m.values[key].(string)
	return s, ok
}

// Int returns the integer stored under key, whatever its integer type; ok is false when key is absent, not an
// integer, or a uint64 too large for int64.
func (m *Metadata) Int(key string) (int64, bool) {
	switch x := m.values[key].(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// Float returns the number stored under key as float64: a float32, a float64 or any integer type; ok is false
// when key is absent or not a number.
func (m *Metadata) Float(key string) (float64, bool) {
	switch x := m.values[key].(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := m.Int(key); ok {
		return float64(i), true
	}
	return 0, false
}

// Bool returns the bool stored under key.
func (m *Metadata) Bool(key string) (bool, bool) {
	b, ok := m.values[key].(bool)
	return b, ok
}

// Strings returns the string array stored under key (not a copy: do not modify it).
func (m *Metadata) Strings(key string) ([]string, bool) {
	s, ok := m.values[key].([]string)
	return s, ok
}

// Float32s returns the float32 array stored under key (not a copy: do not modify it).
func (m *Metadata) Float32s(key string) ([]float32, bool) {
	s, ok := m.values[key].([]float32)
	return s, ok
}

// Int32s returns the integer array stored under key as []int32. An []int32 is returned as stored (do not
// modify it); an array of another integer type is converted when every element fits in int32.
func (m *Metadata) Int32s(key string) ([]int32, bool) {
	switch x := m.values[key].(type) {
	case []int32:
		return x, true
	case []uint8:
		return convertInts(x)
	case []int8:
		return convertInts(x)
	case []uint16:
		return convertInts(x)
	case []int16:
		return convertInts(x)
	case []uint32:
		return convertInts(x)
	case []int64:
		return convertInts(x)
	case []uint64:
		return convertInts(x)
	}
	return nil, false
}

func convertInts[T uint8 | int8 | uint16 | int16 | uint32 | int64 | uint64](s []T) ([]int32, bool) {
	out := make([]int32, len(s))
	for i, v := range s {
		if int64(v) < math.MinInt32 || int64(v) > math.MaxInt32 || (v > 0 && uint64(v) > math.MaxInt32) {
			return nil, false
		}
		out[i] = int32(v)
	}
	return out, true
}

// Clone returns a copy of m whose key order and map are independent of m (array values are shared).
func (m *Metadata) Clone() *Metadata {
	c := &Metadata{keys: append([]string(nil), m.keys...), values: make(map[string]any, len(m.values))}
	for k, v := range m.values {
		c.values[k] = v
	}
	return c
}

// GoString summarizes m for debugging.
func (m *Metadata) GoString() string { return fmt.Sprintf("weights.Metadata(%d keys)", len(m.keys)) }
