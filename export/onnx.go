package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file encodes the few ONNX protobuf messages a graph needs (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto) with protowire, field numbers as in onnx/onnx.proto3. No
// generated message types are used, so nothing is registered in the protobuf registry (hugot links its own copy
// of the ONNX messages; a second registration of the same names would conflict).

// ONNX TensorProto.DataType values.
const (
	onnxFloat = 1
	onnxInt64 = 7
	onnxBool  = 9
)

// ONNX AttributeProto.AttributeType values.
const (
	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

// onnxOpset is the default-domain opset the graphs are written for: 17 keeps the axes of ReduceMean and ReduceMax
// as attributes and is read by ONNX Runtime 1.30 and by onnx-gomlx (hugot's Go runtime).
const onnxOpset = 17

// onnxIRVersion is the IR version that goes with opset 17.
const onnxIRVersion = 8

// maxProtoBytes is the most a protobuf message may hold: larger models need ONNX's external data, which these
// writers do not produce.
const maxProtoBytes = math.MaxInt32

// attribute is one encoded AttributeProto.
type attribute []byte

func intAttr(name string, v int64) attribute {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(v))
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, attrInt)
	return b
}

func floatAttr(name string, v float32) attribute {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(v))
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, attrFloat)
	return b
}

func intsAttr(name string, vs ...int64) attribute {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	var packed []byte
	for _, v := range vs {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, packed)
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, attrInts)
	return b
}

// onnxGraph collects the nodes, initializers, inputs and outputs of one GraphProto. Values are named by the
// builder: each op's output gets a fresh name.
type onnxGraph struct {
	nodes   [][]byte // encoded NodeProto
	inits   [][]byte // encoded TensorProto
	inputs  [][]byte // encoded ValueInfoProto
	outputs [][]byte // encoded ValueInfoProto
	size    int      // bytes of initializer data so far
	next    int      // counter for value names
	consts  map[string]string
}

func newONNXGraph() *onnxGraph { return &onnxGraph{consts: map[string]string{}} }

// op adds a node and returns the name of its (single) output. The name starts with the op type, which makes the
// graph readable in a viewer.
func (g *onnxGraph) op(opType string, inputs []string, attrs ...attribute) string {
	g.next++
	return g.opTo(opType+"_"+strconv.Itoa(g.next), opType, inputs, attrs...)
}

// opTo adds a node whose output is named out.
func (g *onnxGraph) opTo(out, opType string, inputs []string, attrs ...attribute) string {
	var b []byte
	for _, in := range inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, out)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, out)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, opType)
	for _, a := range attrs {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, a)
	}
	g.nodes = append(g.nodes, b)
	return out
}

// tensor adds an initializer with raw little-endian data and returns its name.
func (g *onnxGraph) tensor(name string, dataType int, dims []int, raw []byte) string {
	var b []byte
	var packed []byte
	for _, d := range dims {
		packed = protowire.AppendVarint(packed, uint64(d))
	}
	if len(dims) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(dataType))
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	g.inits = append(g.inits, b)
	g.size += len(b)
	return name
}

// floats adds a float32 initializer of the given (row-major) dims.
func (g *onnxGraph) floats(name string, dims []int, data []float32) string {
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return g.tensor(name, onnxFloat, dims, raw)
}

// vector adds a float32 initializer of shape (len(data)) under a fresh name.
func (g *onnxGraph) vector(data []float32) string {
	g.next++
	return g.floats("weight_"+strconv.Itoa(g.next), []int{len(data)}, data)
}

// matrix adds a float32 initializer of shape (rows, cols) under a fresh name.
func (g *onnxGraph) matrix(rows, cols int, data []float32) string {
	g.next++
	return g.floats("weight_"+strconv.Itoa(g.next), []int{rows, cols}, data)
}

// int64s adds an int64 initializer; dims nil makes a scalar.
func (g *onnxGraph) int64s(name string, dims []int, data ...int64) string {
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return g.tensor(name, onnxInt64, dims, raw)
}

// constInts returns a shared int64 vector initializer holding vs (shapes, axes, slice bounds).
func (g *onnxGraph) constInts(vs ...int64) string {
	key := fmt.Sprint("i", vs)
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := "const_" + strconv.Itoa(len(g.consts))
	g.consts[key] = name
	return g.int64s(name, []int{len(vs)}, vs...)
}

// constInt returns a shared int64 scalar initializer.
func (g *onnxGraph) constInt(v int64) string {
	key := fmt.Sprint("s", v)
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := "const_" + strconv.Itoa(len(g.consts))
	g.consts[key] = name
	return g.int64s(name, nil, v)
}

// constFloat returns a shared float32 scalar initializer.
func (g *onnxGraph) constFloat(v float32) string {
	key := fmt.Sprint("f", math.Float32bits(v))
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := "const_" + strconv.Itoa(len(g.consts))
	g.consts[key] = name
	return g.floats(name, nil, []float32{v})
}

// valueInfo encodes a ValueInfoProto of a tensor whose dims are numbers or, where dims[i] < 0, the symbolic name
// params[i].
func valueInfo(name string, elemType int, dims []int64, params []string) []byte {
	var shape []byte
	for i, d := range dims {
		var dim []byte
		if d >= 0 {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d))
		} else {
			dim = protowire.AppendTag(dim, 2, protowire.BytesType)
			dim = protowire.AppendString(dim, params[i])
		}
		shape = protowire.AppendTag(shape, 1, protowire.BytesType)
		shape = protowire.AppendBytes(shape, dim)
	}
	var tensorType []byte
	tensorType = protowire.AppendTag(tensorType, 1, protowire.VarintType)
	tensorType = protowire.AppendVarint(tensorType, uint64(elemType))
	tensorType = protowire.AppendTag(tensorType, 2, protowire.BytesType)
	tensorType = protowire.AppendBytes(tensorType, shape)
	var typ []byte
	typ = protowire.AppendTag(typ, 1, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tensorType)
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, typ)
	return b
}

func (g *onnxGraph) input(name string, elemType int, dims []int64, params []string) {
	g.inputs = append(g.inputs, valueInfo(name, elemType, dims, params))
}

func (g *onnxGraph) output(name string, elemType int, dims []int64, params []string) {
	g.outputs = append(g.outputs, valueInfo(name, elemType, dims, params))
}

// model encodes the ModelProto holding the graph, with metadata_props from props (in key order given).
func (g *onnxGraph) model(name, producer string, props [][2]string) ([]byte, error) {
	var gb []byte
	for _, n := range g.nodes {
		gb = protowire.AppendTag(gb, 1, protowire.BytesType)
		gb = protowire.AppendBytes(gb, n)
	}
	gb = protowire.AppendTag(gb, 2, protowire.BytesType)
	gb = protowire.AppendString(gb, name)
	total := len(gb) + g.size + 16*len(g.inits)
	if total > maxProtoBytes {
		return nil, fmt.Errorf("export: onnx graph of %d bytes is over protobuf's 2 GiB limit", total)
	}
	for _, t := range g.inits {
		gb = protowire.AppendTag(gb, 5, protowire.BytesType)
		gb = protowire.AppendBytes(gb, t)
	}
	for _, v := range g.inputs {
		gb = protowire.AppendTag(gb, 11, protowire.BytesType)
		gb = protowire.AppendBytes(gb, v)
	}
	for _, v := range g.outputs {
		gb = protowire.AppendTag(gb, 12, protowire.BytesType)
		gb = protowire.AppendBytes(gb, v)
	}

	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, onnxIRVersion)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, producer)
	var opset []byte
	opset = protowire.AppendTag(opset, 1, protowire.BytesType)
	opset = protowire.AppendString(opset, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, onnxOpset)
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, opset)
	for _, kv := range props {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, kv[0])
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, kv[1])
		b = protowire.AppendTag(b, 14, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendBytes(b, gb)
	return b, nil
}
