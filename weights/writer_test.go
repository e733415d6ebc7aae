package weights

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func allTypesMetadata() *Metadata {
	md := NewMetadata()
	md.Set("general.architecture", "llama")
	md.Set("u8", uint8(200))
	md.Set("i8", int8(-100))
	md.Set("u16", uint16(60000))
	md.Set("i16", int16(-30000))
	md.Set("u32", uint32(4000000000))
	md.Set("i32", int32(-2000000000))
	md.Set("u64", uint64(1)<<63+5)
	md.Set("i64", int64(-1)<<62)
	md.Set("f32", float32(1e-5))
	md.Set("f64", 3.141592653589793)
	md.Set("bool.true", true)
	md.Set("bool.false", false)
	md.Set("string", "héllo\x00world")
	md.Set("empty.string", "")
	md.Set("a.u8", []uint8{1, 2, 255})
	md.Set("a.i8", []int8{-1, 2, -128})
	md.Set("a.u16", []uint16{1, 65535})
	md.Set("a.i16", []int16{-32768, 7})
	md.Set("a.u32", []uint32{0, 4294967295})
	md.Set("a.i32", []int32{-5, 5})
	md.Set("a.u64", []uint64{1 << 40})
	md.Set("a.i64", []int64{-1 << 40, 3})
	md.Set("a.f32", []float32{0.5, -2})
	md.Set("a.f64", []float64{1e300})
	md.Set("a.bool", []bool{true, false, true})
	md.Set("a.string", []string{"a", "", "ünï"})
	md.Set("a.empty", []int32{})
	md.Set("a.nested", []any{[]string{"x", "y"}, []int32{1}, []any{[]float32{2.5}, []any{}}})
	md.Set("a.nested.empty", []any{})
	return md
}

func TestWriteGGUFRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	md := allTypesMetadata()
	md.Set("general.alignment", uint32(64))
	var tensors []*Tensor
	types := []Type{TypeF32, TypeF16, TypeBF16, TypeQ4_0, TypeQ4_1, TypeQ5_0, TypeQ5_1, TypeQ8_0, TypeQ4_K, TypeQ5_K, TypeQ6_K, TypeQ8_K}
	for i, typ := range types {
		shape := []int{256, 3}
		if i%3 == 1 {
			shape = []int{512}
		} else if i%3 == 2 {
			shape = []int{256, 2, 2}
		}
		n, err := TensorBytes(typ, shape)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		tensors = append(tensors, &Tensor{Name: "t." + typ.String(), Type: typ, Shape: shape, Data: data})
	}
	path := filepath.Join(t.TempDir(), "all.gguf")
	var buf bytes.Buffer
	if err := WriteGGUF(&buf, md, tensors); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := OpenGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if !reflect.DeepEqual(ck.Metadata.Keys(), md.Keys()) {
		t.Errorf("keys %v, want %v", ck.Metadata.Keys(), md.Keys())
	}
	for _, k := range md.Keys() {
		want, _ := md.Value(k)
		got, _ := ck.Metadata.Value(k)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v (%T), want %#v (%T)", k, got, got, want, want)
		}
	}
	if len(ck.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(ck.Tensors), len(tensors))
	}
	for i, want := range tensors {
		got := ck.Tensors[i]
		if got.Name != want.Name || got.Type != want.Type || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %d: got %s %s %v (%d bytes), want %s %s %v", i, got.Name, got.Type, got.Shape, len(got.Data), want.Name, want.Type, want.Shape)
		}
	}
	// Every tensor starts at a multiple of the alignment in the file.
	for _, tn := range ck.Tensors {
		start := bytes.Index(buf.Bytes(), tn.Data)
		if start%64 != 0 {
			t.Errorf("tensor %s at byte %d, not 64-aligned", tn.Name, start)
		}
	}
}

func TestWriteGGUFErrors(t *testing.T) {
	md := NewMetadata()
	md.Set("bad", struct{}{})
	if err := WriteGGUF(&bytes.Buffer{}, md, nil); err == nil {
		t.Error("struct value: no error")
	}
	md = NewMetadata()
	md.Set("general.alignment", uint32(48))
	if err := WriteGGUF(&bytes.Buffer{}, md, nil); err == nil {
		t.Error("alignment 48: no error")
	}
	bad := []*Tensor{{Name: "x", Type: TypeF32, Shape: []int{4}, Data: make([]byte, 15)}}
	if err := WriteGGUF(&bytes.Buffer{}, nil, bad); err == nil {
		t.Error("short data: no error")
	}
	bad = []*Tensor{{Name: "x", Type: TypeQ8_0, Shape: []int{31}, Data: make([]byte, 34)}}
	var be *BlockError
	if err := WriteGGUF(&bytes.Buffer{}, nil, bad); !errors.As(err, &be) {
		t.Errorf("31 Q8_0 values: %v, want a BlockError", err)
	}
	dup := []*Tensor{{Name: "x", Type: TypeF32, Shape: []int{1}, Data: make([]byte, 4)}, {Name: "x", Type: TypeF32, Shape: []int{1}, Data: make([]byte, 4)}}
	if err := WriteGGUF(&bytes.Buffer{}, nil, dup); err == nil {
		t.Error("duplicate names: no error")
	}
}
