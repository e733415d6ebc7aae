#!/usr/bin/python3
"""Training speed of the same LLaMA shapes as `bestofn bench --train`, in PyTorch (Debian's torch 1.13):
llama2.c's model.py architecture (RMSNorm, RoPE, GQA, SwiGLU, tied embeddings), float32, AdamW with weight decay,
next-token cross-entropy on random tokens, torch.set_num_threads(THREADS) (2 by default).

Prints one JSON object per shape: parameters, batch, sequence length, tokens/s, GFLOP/s (6 FLOPs per parameter
per token) and the process's peak RSS so far (ru_maxrss).

Usage: /usr/bin/python3 scripts/bench_train_torch.py [--shape 260k|1m|15m|all] [--steps N] [--threads T]
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (dim, hidden, layers, heads, kv_heads, vocab, batch, seq_len), as in cmd/bestofn/bench_train.go
SHAPES = {
    "260k": (64, 172, 5, 8, 4, 512, 8, 256),
    "1m": (128, 344, 6, 8, 4, 512, 8, 256),
    "15m": (288, 768, 6, 6, 6, 32000, 4, 256),
}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head, seq, theta=10000.0):
    inv = theta ** (-torch.arange(0, head, 2).float() / head)
    ang = torch.outer(torch.arange(seq).float(), inv)
    return torch.cos(ang), torch.sin(ang)


def rope(x, cos, sin):
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, dim, hidden, heads, kv_heads):
        super().__init__()
        self.heads, self.kv_heads, self.head = heads, kv_heads, dim // heads
        self.wq = nn.Linear(dim, heads * self.head, bias=False)
        self.wk = nn.Linear(dim, kv_heads * self.head, bias=False)
        self.wv = nn.Linear(dim, kv_heads * self.head, bias=False)
        self.wo = nn.Linear(heads * self.head, dim, bias=False)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.attn_norm, self.ffn_norm = RMSNorm(dim), RMSNorm(dim)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = rope(self.wq(h).view(B, T, self.heads, self.head), cos, sin)
        k = rope(self.wk(h).view(B, T, self.kv_heads, self.head), cos, sin)
        v = self.wv(h).view(B, T, self.kv_heads, self.head)
        rep = self.heads // self.kv_heads
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(o)
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class LLaMA(nn.Module):
    def __init__(self, dim, hidden, layers, heads, kv_heads, vocab, seq):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, hidden, heads, kv_heads) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.tok.weight  # tied
        cos, sin = rope_tables(dim // heads, seq)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        T = tokens.shape[1]
        x = self.tok(tokens)
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T], self.mask[:T, :T])
        logits = self.out(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))


def bench(name, steps, threads):
    dim, hidden, layers, heads, kv_heads, vocab, batch, seq = SHAPES[name]
    torch.manual_seed(1)
    m = LLaMA(dim, hidden, layers, heads, kv_heads, vocab, seq)
    params = sum(p.numel() for p in m.parameters())
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    data = torch.randint(0, vocab, (batch, seq + 1))
    x, y = data[:, :-1], data[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        m(x, y).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    el = time.perf_counter() - t0
    tok_s = batch * seq * steps / el
    return {"shape": name, "params": params, "batch": batch, "seq_len": seq, "threads": threads, "steps": steps,
            "tok_s": tok_s, "gflop_s": 6 * params * tok_s / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="all")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = list(SHAPES) if a.shape == "all" else [a.shape]
    for n in names:
        print(json.dumps(bench(n, a.steps, a.threads)), flush=True)


if __name__ == "__main__":
    main()
