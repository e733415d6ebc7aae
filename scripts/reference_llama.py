#!/usr/bin/python3
"""Independent float32 reference for package model: a LLaMA written here from the published equations
(Touvron et al. 2023: RMSNorm, rotary position embeddings, grouped-query attention, SwiGLU), run with
torch 1.13 on llama2.c's stories260K.bin, read directly from its file format.

Writes into model/testdata:
  reference_stories260K.bin  uint32 n; n bytes of JSON header; then float32 little-endian logits rows.
                             The header lists each sequence's tokens and the positions whose logits rows follow
                             (in order, vocab_size floats each), plus a 200-token greedy decode from BOS.
  stories260K_hf/            the same model as a Hugging Face LlamaForCausalLM export: config.json and
                             model.safetensors, with q/k rows permuted to HF's rotate-half order exactly as
                             transformers' convert_llama_weights_to_hf.py does.

Usage: scripts/reference_llama.py [../shared/models/stories260K]   (run from the repository root)
"""
import json
import math
import os
import struct
import sys

import torch

torch.set_grad_enabled(False)
torch.set_num_threads(1)


def read_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    floats = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32)
    head = dim // n_heads
    kv_dim = n_kv_heads * head
    off = 0

    def take(*shape):
        nonlocal off
        n = math.prod(shape)
        t = floats[off:off + n].reshape(*shape).clone()
        off += n
        return t

    w = {}
    w["tok"] = take(vocab, dim)
    w["rms_att"] = take(n_layers, dim)
    w["wq"] = take(n_layers, n_heads * head, dim)  # rows = outputs (y = W x)
    w["wk"] = take(n_layers, kv_dim, dim)
    w["wv"] = take(n_layers, kv_dim, dim)
    w["wo"] = take(n_layers, dim, n_heads * head)
    w["rms_ffn"] = take(n_layers, dim)
    w["w1"] = take(n_layers, hidden, dim)
    w["w2"] = take(n_layers, dim, hidden)
    w["w3"] = take(n_layers, hidden, dim)
    w["rms_final"] = take(dim)
    off += seq_len * head // 2 * 2  # legacy freq_cis_real / freq_cis_imag tables, unused
    w["cls"] = w["tok"] if shared else take(vocab, dim)
    assert off == floats.numel(), (off, floats.numel())
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
               vocab=vocab, seq_len=seq_len, head=head, eps=1e-5, theta=10000.0, shared=shared)
    return cfg, w


def read_tokenizer(path, vocab):
    with open(path, "rb") as f:
        raw = f.read()
    off = 4
    pieces = []
    for _ in range(vocab):
        _score, n = struct.unpack("<fi", raw[off:off + 8])
        off += 8
        pieces.append(raw[off:off + n])
        off += n
    return pieces


def rmsnorm(x, weight, eps):
    # y = x / sqrt(mean(x^2) + eps) * weight
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, pos, theta):
    # x: (T, heads, head). Rotary embedding on consecutive pairs (x[2i], x[2i+1]) with angle
    # pos * theta^(-2i/head): the pairing of the original LLaMA/llama2.c code (and of GGUF files).
    T, H, D = x.shape
    i = torch.arange(0, D, 2, dtype=torch.float64)
    inv = theta ** (-i / D)
    ang = pos.to(torch.float64)[:, None] * inv[None, :]  # (T, D/2)
    cos = torch.cos(ang).to(torch.float32)[:, None, :]
    sin = torch.sin(ang).to(torch.float32)[:, None, :]
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def forward(cfg, w, tokens):
    """Logits (T, vocab) for every position of one sequence, full causal attention, float32."""
    T = len(tokens)
    H, KH, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head"]
    pos = torch.arange(T)
    x = w["tok"][torch.tensor(tokens)]  # (T, dim)
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["n_layers"]):
        h = rmsnorm(x, w["rms_att"][l], cfg["eps"])
        q = (h @ w["wq"][l].T).view(T, H, D)
        k = (h @ w["wk"][l].T).view(T, KH, D)
        v = (h @ w["wv"][l].T).view(T, KH, D)
        q = rope(q, pos, cfg["theta"])
        k = rope(k, pos, cfg["theta"])
        rep = H // KH  # query head j uses kv head j // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        att = torch.softmax(att, dim=-1)
        o = torch.einsum("hts,shd->thd", att, v).reshape(T, H * D)
        x = x + o @ w["wo"][l].T
        h = rmsnorm(x, w["rms_ffn"][l], cfg["eps"])
        g = h @ w["w1"][l].T
        u = h @ w["w3"][l].T
        x = x + (torch.nn.functional.silu(g) * u) @ w["w2"][l].T
    x = rmsnorm(x, w["rms_final"], cfg["eps"])
    return x @ w["cls"].T


def greedy(cfg, w, bos, n):
    toks = [bos]
    for _ in range(n):
        logits = forward(cfg, w, toks)[-1]
        toks.append(int(torch.argmax(logits)))
    return toks[1:]


def hf_permute(wt, n_heads):
    # transformers/models/llama/convert_llama_weights_to_hf.py: permute(w, n_heads, dim1, dim2)
    dim1, dim2 = wt.shape
    return wt.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, t in tensors:
        b = t.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_hf(cfg, w, out):
    os.makedirs(out, exist_ok=True)
    t = [("model.embed_tokens.weight", w["tok"])]
    for l in range(cfg["n_layers"]):
        p = f"model.layers.{l}."
        t += [
            (p + "input_layernorm.weight", w["rms_att"][l]),
            (p + "self_attn.q_proj.weight", hf_permute(w["wq"][l], cfg["n_heads"])),
            (p + "self_attn.k_proj.weight", hf_permute(w["wk"][l], cfg["n_kv_heads"])),
            (p + "self_attn.v_proj.weight", w["wv"][l]),
            (p + "self_attn.o_proj.weight", w["wo"][l]),
            (p + "post_attention_layernorm.weight", w["rms_ffn"][l]),
            (p + "mlp.gate_proj.weight", w["w1"][l]),
            (p + "mlp.up_proj.weight", w["w3"][l]),
            (p + "mlp.down_proj.weight", w["w2"][l]),
        ]
    t.append(("model.norm.weight", w["rms_final"]))
    if not cfg["shared"]:
        t.append(("lm_head.weight", w["cls"]))
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    conf = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": cfg["dim"], "intermediate_size": cfg["hidden"],
        "num_hidden_layers": cfg["n_layers"], "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": cfg["n_kv_heads"], "vocab_size": cfg["vocab"],
        "max_position_embeddings": cfg["seq_len"], "rms_norm_eps": cfg["eps"], "rope_theta": cfg["theta"],
        "tie_word_embeddings": cfg["shared"], "hidden_act": "silu", "torch_dtype": "float32",
        "bos_token_id": 1, "eos_token_id": 2,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "../shared/models/stories260K"
    out = "model/testdata"
    cfg, w = read_llama2c(os.path.join(src, "stories260K.bin"))
    pieces = read_tokenizer(os.path.join(src, "tok512.bin"), cfg["vocab"])
    bos = 1

    gen = greedy(cfg, w, bos, 200)
    text = b"".join(pieces[t] for t in gen).decode("utf-8", "replace")
    print("greedy:", text[:200], file=sys.stderr)

    g = torch.Generator().manual_seed(20230406)
    long_seq = [bos] + torch.randint(3, cfg["vocab"], (399,), generator=g).tolist()
    seqs = [
        ("short", [bos, 403, 407, 261, 378, 378, 275, 259], None),
        ("greedy", [bos] + gen[:63], None),
        ("long", long_seq, sorted(set(list(range(0, 400, 23)) + [398, 399]))),
    ]
    header = {"model": "stories260K.bin", "vocab_size": cfg["vocab"], "greedy_from_bos": gen,
              "greedy_text": text, "sequences": []}
    rows = []
    for name, toks, positions in seqs:
        logits = forward(cfg, w, toks)
        if positions is None:
            positions = list(range(len(toks)))
        header["sequences"].append({"name": name, "tokens": toks, "positions": positions})
        for p in positions:
            rows.append(logits[p])
    h = json.dumps(header, separators=(",", ":")).encode()
    with open(os.path.join(out, "reference_stories260K.bin"), "wb") as f:
        f.write(struct.pack("<I", len(h)))
        f.write(h)
        f.write(torch.stack(rows).contiguous().numpy().astype("<f4").tobytes())
    write_hf(cfg, w, os.path.join(out, "stories260K_hf"))


if __name__ == "__main__":
    main()
