package weights

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMetadataAccessors(t *testing.T) {
	md := NewMetadata()
	md.Set("a", uint8(7))
	md.Set("b", int(-3))
	md.Set("c", uint64(1)<<63)
	md.Set("d", float32(0.5))
	md.Set("e", []uint16{1, 2})
	md.Set("f", []int64{1 << 40})
	md.Set("g", []int{4, 5})
	md.Set("a", uint32(9)) // keeps its first position
	if got := md.Keys(); !reflect.DeepEqual(got, []string{"a", "b", "c", "d", "e", "f", "g"}) {
		t.Errorf("keys %v", got)
	}
	if v, ok := md.Int("a"); !ok || v != 9 {
		t.Errorf("Int(a) = %d %v", v, ok)
	}
	if v, _ := md.Value("b"); v != int64(-3) {
		t.Errorf("int stored as %T", v)
	}
	if _, ok := md.Int("c"); ok {
		t.Error("Int of 2^63 as uint64 should not fit")
	}
	if f, ok := md.Float("d"); !ok || f != 0.5 {
		t.Errorf("Float(d) = %g", f)
	}
	if f, ok := md.Float("a"); !ok || f != 9 {
		t.Errorf("Float(a) = %g", f)
	}
	if s, ok := md.Int32s("e"); !ok || !reflect.DeepEqual(s, []int32{1, 2}) {
		t.Errorf("Int32s(e) = %v %v", s, ok)
	}
	if _, ok := md.Int32s("f"); ok {
		t.Error("Int32s of 2^40 should fail")
	}
	if s, ok := md.Int32s("g"); !ok || !reflect.DeepEqual(s, []int32{4, 5}) {
		t.Errorf("Int32s(g) = %v", s)
	}
	if _, ok := md.String("a"); ok {
		t.Error("String of an int")
	}
	if _, ok := md.Bool("missing"); ok {
		t.Error("Bool of a missing key")
	}
	c := md.Clone()
	c.Delete("a")
	c.Set("z", true)
	if md.Len() != 7 || c.Len() != 7 || c.Keys()[0] != "b" {
		t.Errorf("clone not independent: %v / %v", md.Keys(), c.Keys())
	}
	if b, ok := c.Bool("z"); !ok || !b {
		t.Error("Bool(z)")
	}
}

func TestOpenDetection(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(junk); err == nil {
		t.Error("junk: no error")
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing: no error")
	}
	if _, err := Open(dir); err == nil {
		t.Error("directory without config.json: no error")
	}
	// A single .safetensors file with config.json beside it, and config.json itself, both open the model.
	for _, p := range []string{"../model/testdata/stories260K_hf/model.safetensors", "../model/testdata/stories260K_hf/config.json"} {
		ck, err := Open(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ck.Format != FormatSafetensors || ck.Tensor("blk.4.ffn_up.weight") == nil {
			t.Errorf("%s: format %s, %d tensors", p, ck.Format, len(ck.Tensors))
		}
		if err := ck.Close(); err != nil {
			t.Error(err)
		}
		if err := ck.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}
