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
	attrInt  = 2
	attrInts = 7
)

// onnxOpset is the default-domain opset the graphs are written for: 17 keeps the axes of ReduceMean and ReduceMax
// as attributes and is read by ONNX Runtime 1.30 and by onnx-gomlx (hugot's Go runtime).
const onnxOpset = 17

// onnxIRVersion is the IR version that goes with opset 17.
const onnxIRVersion = 8

// maxProtoBytes is the most a protobuf message may hold: larger models need ONNX's external data, which these
// writers do not produce.
const maxProtoBytes = math.MaxInt32

// Field encoders: a tag and its value.
func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func stringField(b []byte, num protowire.Number, v string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// packedInts encodes integers as a packed repeated field's payload.
func packedInts[T int | int64](vs []T) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

// attribute is one encoded AttributeProto.
type attribute []byte

func intAttr(name string, v int64) attribute {
	return varintField(varintField(stringField(nil, 1, name), 3, uint64(v)), 20, attrInt)
}

func intsAttr(name string, vs ...int64) attribute {
	return varintField(bytesField(stringField(nil, 1, name), 8, packedInts(vs)), 20, attrInts)
}

// onnxGraph collects the nodes, initializers, inputs and outputs of one GraphProto. Values are named by the
// builder: each op's output gets a fresh name.
type onnxGraph struct {
	nodes   [][]byte // encoded NodeProto
	inits   [][]byte // encoded TensorProto
	inputs  [][]byte // encoded ValueInfoProto
	outputs [][]byte // encoded ValueInfoProto
	size    int      // bytes of initializers so far
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
		b = stringField(b, 1, in)
	}
	b = stringField(stringField(stringField(b, 2, out), 3, out), 4, opType)
	for _, a := range attrs {
		b = bytesField(b, 5, a)
	}
	g.nodes = append(g.nodes, b)
	return out
}

// tensor adds an initializer with raw little-endian data (dims nil: a scalar) and returns its name.
func (g *onnxGraph) tensor(name string, dataType int, dims []int, raw []byte) string {
	var b []byte
	if len(dims) > 0 {
		b = bytesField(b, 1, packedInts(dims))
	}
	b = bytesField(stringField(varintField(b, 2, uint64(dataType)), 8, name), 9, raw)
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

// shared returns the initializer made for key, making it with add under a fresh name the first time: constants
// (shapes, axes, scalars) are stored once however many nodes use them.
func (g *onnxGraph) shared(key string, add func(name string) string) string {
	if name, ok := g.consts[key]; ok {
		return name
	}
	name := add("const_" + strconv.Itoa(len(g.consts)))
	g.consts[key] = name
	return name
}

// constInts returns an int64 vector initializer holding vs (shapes, axes, slice bounds).
func (g *onnxGraph) constInts(vs ...int64) string {
	return g.shared(fmt.Sprint("ints", vs), func(name string) string {
		return g.tensor(name, onnxInt64, []int{len(vs)}, int64Bytes(vs))
	})
}

// constInt returns an int64 scalar initializer.
func (g *onnxGraph) constInt(v int64) string {
	return g.shared(fmt.Sprint("int", v), func(name string) string {
		return g.tensor(name, onnxInt64, nil, int64Bytes([]int64{v}))
	})
}

// constFloat returns a float32 scalar initializer.
func (g *onnxGraph) constFloat(v float32) string {
	return g.shared(fmt.Sprint("float", math.Float32bits(v)), func(name string) string {
		return g.floats(name, nil, []float32{v})
	})
}

func int64Bytes(vs []int64) []byte {
	raw := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return raw
}

// valueInfo encodes a ValueInfoProto of a tensor whose dims are numbers or, where dims[i] < 0, the symbolic name
// params[i].
func valueInfo(name string, elemType int, dims []int64, params []string) []byte {
	var shape []byte
	for i, d := range dims {
		var dim []byte
		if d >= 0 {
			dim = varintField(nil, 1, uint64(d))
		} else {
			dim = stringField(nil, 2, params[i])
		}
		shape = bytesField(shape, 1, dim)
	}
	tensorType := bytesField(varintField(nil, 1, uint64(elemType)), 2, shape)
	return bytesField(stringField(nil, 1, name), 2, bytesField(nil, 1, tensorType))
}

func (g *onnxGraph) input(name string, elemType int, dims []int64, params []string) {
	g.inputs = append(g.inputs, valueInfo(name, elemType, dims, params))
}

func (g *onnxGraph) output(name string, elemType int, dims []int64, params []string) {
	g.outputs = append(g.outputs, valueInfo(name, elemType, dims, params))
}

// model encodes the ModelProto holding the graph.
func (g *onnxGraph) model(name, producer string) ([]byte, error) {
	total := g.size
	for _, part := range [][][]byte{g.nodes, g.inputs, g.outputs} {
		for _, m := range part {
			total += len(m) + 8
		}
	}
	if total+16*len(g.inits) > maxProtoBytes {
		return nil, fmt.Errorf("export: onnx graph of %d bytes is over protobuf's 2 GiB limit", total)
	}
	gb := make([]byte, 0, total+16*len(g.inits)+len(name)+16)
	for _, n := range g.nodes {
		gb = bytesField(gb, 1, n)
	}
	gb = stringField(gb, 2, name)
	for _, t := range g.inits {
		gb = bytesField(gb, 5, t)
	}
	for _, v := range g.inputs {
		gb = bytesField(gb, 11, v)
	}
	for _, v := range g.outputs {
		gb = bytesField(gb, 12, v)
	}
	b := stringField(varintField(nil, 1, onnxIRVersion), 2, producer)
	b = bytesField(b, 8, varintField(stringField(nil, 1, ""), 2, onnxOpset)) // opset_import: the default domain
	return bytesField(b, 7, gb), nil
}
