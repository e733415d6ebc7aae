#!/usr/bin/env python3
"""Writes reward/testdata/bad_output.onnx: a valid ONNX model with the reward-model inputs (input_ids,
attention_mask int64 [batch, sequence]) but an output logits of shape [batch, 2], which package reward must refuse.

    /usr/bin/python3 scripts/reward_badmodel.py
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, LABELS = 3000, 2
rng = np.random.default_rng(7)
emb = numpy_helper.from_array(rng.standard_normal((VOCAB, LABELS)).astype(np.float32), "emb")
graph = helper.make_graph(
    [
        helper.make_node("Gather", ["emb", "input_ids"], ["h"], axis=0),  # (b, t, 2)
        helper.make_node("ReduceMean", ["h"], ["logits"], axes=[1], keepdims=0),  # (b, 2)
    ],
    "bad_output",
    [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
     helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", LABELS])],
    [emb],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "reward/testdata/bad_output.onnx")
print("wrote reward/testdata/bad_output.onnx")
