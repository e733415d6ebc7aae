package weights

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// FuzzGGUF feeds arbitrary bytes to the GGUF parser: it must return an error or a checkpoint whose tensors
// fit their types and shapes, and which writes back and re-parses to the same metadata and tensors.
func FuzzGGUF(f *testing.F) {
	f.Add(smallGGUF(f))
	var buf bytes.Buffer
	md := allTypesMetadata()
	tensors := []*Tensor{
		{Name: "q", Type: TypeQ8_0, Shape: []int{32, 2}, Data: make([]byte, 68)},
		{Name: "k", Type: TypeQ4_K, Shape: []int{256}, Data: make([]byte, 144)},
	}
	if err := WriteGGUF(&buf, md, tensors); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ParseGGUF("fuzz.gguf", data)
		if err != nil {
			return
		}
		for _, tn := range ck.Tensors {
			n, err := TensorBytes(tn.Type, tn.Shape)
			if err != nil || n != len(tn.Data) {
				t.Fatalf("tensor %s: %d bytes for %s %v (%v)", tn.Name, len(tn.Data), tn.Type, tn.Shape, err)
			}
		}
		var out bytes.Buffer
		if err := WriteGGUF(&out, ck.Metadata, ck.Tensors); err != nil {
			t.Fatalf("parsed file does not write back: %v", err)
		}
		back, err := ParseGGUF("back.gguf", out.Bytes())
		if err != nil {
			t.Fatalf("written file does not parse: %v", err)
		}
		if !reflect.DeepEqual(back.Metadata.Keys(), ck.Metadata.Keys()) || len(back.Tensors) != len(ck.Tensors) {
			t.Fatal("round trip changed keys or tensor count")
		}
		for _, k := range ck.Metadata.Keys() {
			a, _ := ck.Metadata.Value(k)
			b, _ := back.Metadata.Value(k)
			if !sameValue(a, b) {
				t.Fatalf("key %q: %#v became %#v", k, a, b)
			}
		}
		for i, tn := range ck.Tensors {
			b := back.Tensors[i]
			if b.Name != tn.Name || b.Type != tn.Type || !reflect.DeepEqual(b.Shape, tn.Shape) || !bytes.Equal(b.Data, tn.Data) {
				t.Fatalf("tensor %d changed in the round trip", i)
			}
		}
	})
}

// sameValue is reflect.DeepEqual except that float NaNs equal themselves bit for bit.
func sameValue(a, b any) bool {
	var ab, bb bytes.Buffer
	ea, eb := &ggufEncoder{w: &ab}, &ggufEncoder{w: &bb}
	if ea.value(a, 0) != nil || eb.value(b, 0) != nil {
		return false
	}
	return bytes.Equal(ab.Bytes(), bb.Bytes())
}

// FuzzSafetensors feeds arbitrary bytes to the safetensors parser: it must return an error or tensors whose data
// has exactly the size of their shape and dtype.
func FuzzSafetensors(f *testing.F) {
	mk := func(header string, body int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return append(append(b, header...), make([]byte, body)...)
	}
	f.Add(mk(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}`, 22))
	f.Add(mk(`{"x":{"dtype":"F16","shape":[],"data_offsets":[0,2]}}`, 2))
	f.Add(mk(`{}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ParseSafetensors("fuzz.safetensors", data)
		if err != nil {
			return
		}
		for _, tn := range ts {
			n := tn.Type.BlockBytes()
			for _, d := range tn.Shape {
				n *= d
			}
			if n != len(tn.Data) {
				t.Fatalf("tensor %s: %d bytes for %s %v", tn.Name, len(tn.Data), tn.Type, tn.Shape)
			}
		}
		// Whatever parses must also survive the HF normalization without panicking.
		_, _, _ = normalizeHF("fuzz", hfConfig{HiddenSize: 4, NumHiddenLayers: 1, NumAttentionHeads: 2, IntermediateSize: 4, VocabSize: 4}, ts)
	})
}

// FuzzLlama2C feeds arbitrary bytes to the llama2.c parser: it must return an error or tensors that cover the
// file exactly as the header says.
func FuzzLlama2C(f *testing.F) {
	hdr := func(v ...int32) []byte {
		b := make([]byte, 0, 28)
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		}
		return b
	}
	// dim 4, hidden 4, 1 layer, 2 heads, 1 kv head, vocab -2 (untied), seq 2: size follows from the layout.
	small := hdr(4, 4, 1, 2, 1, -2, 2)
	n := 4 * (2*4 + 4 + 4*4 + 2*4*2 + 4*4 + 4 + 3*4*4 + 4 + 2*2 + 2*4)
	f.Add(append(small, make([]byte, n)...))
	f.Add(hdr(64, 172, 5, 8, 4, 512, 512))
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := ParseLlama2C("fuzz.bin", data)
		if err != nil {
			return
		}
		for _, tn := range ck.Tensors {
			if tn == nil {
				t.Fatal("nil tensor")
			}
			if n, err := TensorBytes(tn.Type, tn.Shape); err != nil || n != len(tn.Data) {
				t.Fatalf("tensor %s: %d bytes for %v", tn.Name, len(tn.Data), tn.Shape)
			}
		}
	})
}
