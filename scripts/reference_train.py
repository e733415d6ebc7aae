#!/usr/bin/python3
"""Independent float64 reference for package train: a LLaMA written here from the published equations
(RMSNorm, rotary embeddings on interleaved pairs, grouped-query attention, SwiGLU, tied or untied output), run
by torch 1.13 autograd on padded batches with an attention mask, for two models:

  stories260K   llama2.c's stories260K.bin (dim 64, 5 layers, 8 heads, 4 kv heads, vocab 512, tied output)
  random_gqa    a random model written here to train/testdata/random_gqa.bin in llama2.c's format (dim 48,
                2 layers, 6 heads, 2 kv heads, hidden 40, vocab 67, untied output)

Writes train/testdata/reference_train.json with, per case, the token batches, the loss, a few rows of logits
(language models) or the scores (reward model), and for every parameter (GGUF names) its gradient's L2 norm,
its projection on the fixed vector r[i] = sin(0.37 i + 0.1), and 48 sampled entries; plus the losses of the
first AdamW steps (torch.optim.AdamW, warmup + cosine schedule, global-norm clipping) on stories260K.

The batches are right-padded (language models) or left-padded (reward model) to their longest sequence, with
pad keys masked and positions counted from each sequence's first real token; package train packs the same
sequences without padding, so agreement also checks that padding changes nothing.

Usage (from the repository root): /usr/bin/python3 scripts/reference_train.py [../shared/models/stories260K]
"""
import json
import math
import os
import random
import struct
import sys

import torch

torch.set_num_threads(1)
DT = torch.float64


def read_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    floats = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32).to(DT)
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
    off += seq_len * head // 2 * 2  # legacy freq_cis tables, unused
    if not shared:
        w["cls"] = take(vocab, dim)
    assert off == floats.numel(), (off, floats.numel())
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads, vocab=vocab,
               seq_len=seq_len, head=head, eps=1e-5, theta=10000.0, shared=shared)
    return cfg, w


def write_random_llama2c(path, seed):
    """A random untied GQA model in llama2.c's legacy format (negative vocab_size: classifier not shared)."""
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = 48, 40, 2, 6, 2, 67, 128
    head = dim // n_heads
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.15):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    parts = [
        rnd(vocab, dim, std=0.5),
        1 + rnd(n_layers, dim, std=0.1),
        rnd(n_layers, dim, dim), rnd(n_layers, n_kv_heads * head, dim), rnd(n_layers, n_kv_heads * head, dim),
        rnd(n_layers, dim, dim),
        1 + rnd(n_layers, dim, std=0.1),
        rnd(n_layers, hidden, dim), rnd(n_layers, dim, hidden), rnd(n_layers, hidden, dim),
        1 + rnd(dim, std=0.1),
        torch.zeros(seq_len * head // 2 * 2),
        rnd(vocab, dim),
    ]
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, n_layers, n_heads, n_kv_heads, -vocab, seq_len))
        for p in parts:
            f.write(p.contiguous().numpy().astype("<f4").tobytes())


def rmsnorm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, pos, theta):
    # x: (B, T, heads, head); pos: (B, T). Rotates consecutive pairs (x[2i], x[2i+1]) by pos * theta^(-2i/head).
    D = x.shape[-1]
    inv = theta ** (-torch.arange(0, D, 2, dtype=DT) / D)
    ang = pos.to(DT)[..., None] * inv  # (B, T, D/2)
    cos, sin = torch.cos(ang)[:, :, None, :], torch.sin(ang)[:, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def hidden_states(cfg, w, seqs, left_pad):
    """Final-normed hidden states (B, T, dim) of a padded batch, the mask of real tokens (B, T)."""
    B, T = len(seqs), max(len(s) for s in seqs)
    H, KH, D = cfg["n_heads"], cfg["n_kv_heads"], cfg["head"]
    tokens = torch.zeros(B, T, dtype=torch.long)
    valid = torch.zeros(B, T, dtype=torch.bool)
    pos = torch.zeros(B, T, dtype=torch.long)
    for b, s in enumerate(seqs):
        o = T - len(s) if left_pad else 0
        tokens[b, o:o + len(s)] = torch.tensor(s)
        valid[b, o:o + len(s)] = True
        pos[b, o:o + len(s)] = torch.arange(len(s))
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    mask = causal[None] & valid[:, None, :]  # (B, query, key): causal, pad keys hidden
    mask = mask | torch.eye(T, dtype=torch.bool)[None]  # pad queries see themselves (their output is unused)
    x = w["tok"][tokens]
    for l in range(cfg["n_layers"]):
        h = rmsnorm(x, w["rms_att"][l], cfg["eps"])
        q = (h @ w["wq"][l].T).view(B, T, H, D)
        k = (h @ w["wk"][l].T).view(B, T, KH, D)
        v = (h @ w["wv"][l].T).view(B, T, KH, D)
        q, k = rope(q, pos, cfg["theta"]), rope(k, pos, cfg["theta"])
        k = k.repeat_interleave(H // KH, dim=2)  # query head j reads kv head j // (H/KH)
        v = v.repeat_interleave(H // KH, dim=2)
        att = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(D)
        att = att.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        o = torch.einsum("bhts,bshd->bthd", att, v).reshape(B, T, H * D)
        x = x + o @ w["wo"][l].T
        h = rmsnorm(x, w["rms_ffn"][l], cfg["eps"])
        x = x + (torch.nn.functional.silu(h @ w["w1"][l].T) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rmsnorm(x, w["rms_final"], cfg["eps"]), valid


def lm_loss(cfg, w, seqs, targets):
    h, _ = hidden_states(cfg, w, seqs, left_pad=False)
    logits = h @ w.get("cls", w["tok"]).T
    B, T = len(seqs), h.shape[1]
    tgt = torch.full((B, T), -100, dtype=torch.long)
    for b, t in enumerate(targets):
        tgt[b, :len(t)] = torch.tensor([x if x >= 0 else -100 for x in t])
    loss = torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), tgt.reshape(-1), ignore_index=-100)
    return loss, logits


def rm_scores(cfg, w, seqs):
    h, valid = hidden_states(cfg, w, seqs, left_pad=True)
    last = h[:, -1]  # left padding: every sequence's last token is at T-1
    return last @ w["rm_w"] + w["rm_b"]


def gguf_grads(cfg, w):
    """The gradient of every parameter under its GGUF name (float64)."""
    out = {"token_embd.weight": w["tok"].grad}
    Q = cfg["n_heads"] * cfg["head"]
    for l in range(cfg["n_layers"]):
        p = f"blk.{l}."
        out[p + "attn_norm.weight"] = w["rms_att"].grad[l]
        out[p + "attn_q.weight"] = w["wq"].grad[l]
        out[p + "attn_k.weight"] = w["wk"].grad[l]
        out[p + "attn_v.weight"] = w["wv"].grad[l]
        out[p + "attn_output.weight"] = w["wo"].grad[l]
        out[p + "ffn_norm.weight"] = w["rms_ffn"].grad[l]
        out[p + "ffn_gate.weight"] = w["w1"].grad[l]
        out[p + "ffn_up.weight"] = w["w3"].grad[l]
        out[p + "ffn_down.weight"] = w["w2"].grad[l]
    out["output_norm.weight"] = w["rms_final"].grad
    if "cls" in w:
        out["output.weight"] = w["cls"].grad
    if "rm_w" in w:
        out["rm_head.weight"] = w["rm_w"].grad
        out["rm_head.bias"] = w["rm_b"].grad.reshape(1)
    return out


def summarize(grads, rng):
    s = {}
    for name, g in grads.items():
        flat = g.reshape(-1)
        n = flat.numel()
        r = torch.sin(0.37 * torch.arange(n, dtype=DT) + 0.1)
        idx = sorted(rng.sample(range(n), min(48, n)))
        s[name] = {"norm": float(flat.norm()), "proj": float(flat @ r), "idx": idx,
                   "val": [float(flat[i]) for i in idx]}
    return s


def leaves(w):
    for k in w:
        w[k] = w[k].clone().requires_grad_(True)
    return w


def random_seqs(g, lengths, vocab):
    return [torch.randint(0, vocab, (n,), generator=g).tolist() for n in lengths]


def next_token_targets(seqs, prompt):
    # Targets are the next tokens; the first `prompt` positions and the last have none (-1).
    return [[s[i + 1] if prompt <= i < len(s) - 1 else -1 for i in range(len(s))] for s in seqs]


def lm_case(name, model, cfg, w0, lengths, prompt, seed):
    g = torch.Generator().manual_seed(seed)
    seqs = random_seqs(g, lengths, cfg["vocab"])
    targets = next_token_targets(seqs, prompt)
    w = leaves(dict(w0))
    loss, logits = lm_loss(cfg, w, seqs, targets)
    loss.backward()
    rows = [(0, 0), (0, len(seqs[0]) - 1), (1, min(40, len(seqs[1]) - 1)), (len(seqs) - 1, len(seqs[-1]) - 1)]
    return {"name": name, "model": model, "head": "lm",
            "sequences": [{"tokens": s, "targets": t} for s, t in zip(seqs, targets)],
            "loss": float(loss),
            "logits": [{"seq": b, "pos": p, "values": [float(v) for v in logits[b, p]]} for b, p in rows],
            "grads": summarize(gguf_grads(cfg, w), random.Random(seed))}


def rm_case(name, model, cfg, w0, pair_lengths, margins, seed):
    g = torch.Generator().manual_seed(seed)
    pairs = [random_seqs(g, lens, cfg["vocab"]) for lens in pair_lengths]
    w = dict(w0)
    w["rm_w"] = torch.randn(cfg["dim"], generator=g, dtype=DT) * 0.3
    w["rm_b"] = torch.tensor(0.25, dtype=DT)
    head = {"weight": [float(v) for v in w["rm_w"]], "bias": float(w["rm_b"])}
    w = leaves(w)
    seqs = [p[0] for p in pairs] + [p[1] for p in pairs]
    scores = rm_scores(cfg, w, seqs)
    n = len(pairs)
    m = torch.tensor(margins, dtype=DT)
    loss = -torch.nn.functional.logsigmoid(scores[:n] - scores[n:] - m).mean()
    loss.backward()
    return {"name": name, "model": model, "head": "reward", "rm_head": head,
            "pairs": [{"chosen": c, "rejected": r, "margin": mg} for (c, r), mg in zip(pairs, margins)],
            "scores": [float(s) for s in scores], "loss": float(loss),
            "grads": summarize(gguf_grads(cfg, w), random.Random(seed))}


def lr_at(step, hp):
    # Linear warmup to lr over `warmup` steps (step 0 already at lr/warmup), then cosine to lr*min_lr_ratio.
    if step < hp["warmup"]:
        return hp["lr"] * (step + 1) / hp["warmup"]
    ratio = (step - hp["warmup"]) / (hp["steps"] - hp["warmup"])
    lo = hp["lr"] * hp["min_lr_ratio"]
    return lo + 0.5 * (1 + math.cos(math.pi * ratio)) * (hp["lr"] - lo)


def adamw_case(model, cfg, w0, case, hp):
    w = leaves(dict(w0))
    norms = ("rms_att", "rms_ffn", "rms_final")  # no weight decay on norms; matrices and embeddings decay
    decay = [w[k] for k in w if k not in norms]
    no_decay = [w[k] for k in w if k in norms]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    seqs = [s["tokens"] for s in case["sequences"]]
    targets = [s["targets"] for s in case["sequences"]]
    losses, norms = [], []
    for step in range(hp["steps"]):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, hp)
        opt.zero_grad()
        loss, _ = lm_loss(cfg, w, seqs, targets)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(w.values()), hp["clip"])))
        opt.step()
        losses.append(float(loss))
    with torch.no_grad():
        final, _ = lm_loss(cfg, w, seqs, targets)
    losses.append(float(final))
    return {"model": model, "case": case["name"], "hparams": hp, "losses": losses, "grad_norms": norms}


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared/models/stories260K"
    out_dir = "train/testdata"
    os.makedirs(out_dir, exist_ok=True)
    rnd_path = os.path.join(out_dir, "random_gqa.bin")
    write_random_llama2c(rnd_path, seed=5)
    cfg_s, w_s = read_llama2c(os.path.join(shared, "stories260K.bin"))
    cfg_r, w_r = read_llama2c(rnd_path)

    cases = [
        lm_case("stories260K_lm", "stories260K.bin", cfg_s, w_s, [37, 80, 5], 3, seed=11),
        lm_case("random_gqa_lm", "random_gqa.bin", cfg_r, w_r, [70, 12, 33, 2], 4, seed=12),
        rm_case("stories260K_rm", "stories260K.bin", cfg_s, w_s, [(20, 31), (45, 12), (70, 66)], [0.0, 0.5, 1.0],
                seed=13),
    ]
    hp = {"lr": 3e-3, "warmup": 2, "steps": 6, "min_lr_ratio": 0.1, "weight_decay": 0.1, "beta1": 0.9,
          "beta2": 0.95, "eps": 1e-8, "clip": 1.0}
    adamw = adamw_case("stories260K.bin", cfg_s, w_s, cases[0], hp)
    ref = {"torch": torch.__version__, "projection": "sin(0.37*i + 0.1)", "cases": cases, "adamw": adamw}
    with open(os.path.join(out_dir, "reference_train.json"), "w") as f:
        json.dump(ref, f)
    print("losses", [c["loss"] for c in cases], "adamw", adamw["losses"])


if __name__ == "__main__":
    main()
