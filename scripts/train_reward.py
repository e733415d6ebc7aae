#!/usr/bin/env python3
"""Train bestofn's tiny test reward model and export it for package reward.

What it does (all on CPU, deterministic for a fixed --seed):
  1. Reads Anthropic HH-RLHF harmless-base test pairs ({chosen, rejected} dialogues), splits each dialogue into
     (prompt, response) at the last "\n\nAssistant: ", shuffles with a fixed seed and holds out 20%.
  2. Trains a SentencePiece Unigram tokenizer on the training dialogues (identity normalization, whitespace kept
     as is, dummy prefix) and writes it as a Hugging Face tokenizer.json (Metaspace pre-tokenizer, Unigram model,
     TemplateProcessing "[CLS] $A [SEP]"), the format DeBERTa-v3 reward models ship.
  3. Trains a small pre-LayerNorm transformer encoder (2 layers, d=128, 4 heads, GELU FFN 512, learned positions,
     [CLS] pooling, linear head -> 1 scalar) with the pairwise loss -log sigmoid(r(x, y_chosen) - r(x, y_rejected)).
  4. Prints held-out pairwise accuracy, exports ONNX (inputs input_ids, attention_mask int64 [batch, seq];
     output logits float32 [batch, 1]; opset 17) plus config.json (num_labels 1) into reward/testdata/tiny-rm/, and
     writes torch's reference scores and token ids for fixed inputs to reward/testdata/reference_scores.json.

Run from the repository root with Debian's python3 (python3-torch, python3-sentencepiece, python3-onnx):
    /usr/bin/python3 scripts/train_reward.py
"""

import argparse
import gzip
import io
import json
import math
import os
import random
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

TEMPLATE = "\n\nHuman: {prompt}\n\nAssistant: {response}"
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def split_dialogue(text):
    """Returns (prompt, response) so that TEMPLATE renders text back exactly, or None."""
    head = "\n\nHuman: "
    sep = "\n\nAssistant: "
    if not text.startswith(head):
        return None
    i = text.rfind(sep)
    if i < len(head):
        return None
    return text[len(head):i], text[i + len(sep):]


def load_pairs(path):
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            ex = json.loads(line)
            c, r = split_dialogue(ex["chosen"]), split_dialogue(ex["rejected"])
            if c is None or r is None or c[0] != r[0] or c[1] == r[1]:
                continue
            pairs.append((c[0], c[1], r[1]))
    return pairs


def train_tokenizer(texts, vocab_size, seed):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_by_whitespace=True,
        byte_fallback=False,
        max_sentence_length=1 << 16,
        pad_id=PAD, unk_id=UNK, bos_id=CLS, eos_id=SEP,
        pad_piece="[PAD]", unk_piece="[UNK]", bos_piece="[CLS]", eos_piece="[SEP]",
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=buf.getvalue())


def hf_tokenizer_json(sp):
    """The tokenizer as a Hugging Face tokenizer.json (what tokenizers' SpmConverter emits for this model)."""
    vocab = [[sp.id_to_piece(i), float(sp.get_score(i))] for i in range(sp.get_piece_size())]
    special = [(PAD, "[PAD]"), (UNK, "[UNK]"), (CLS, "[CLS]"), (SEP, "[SEP]")]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for i, s in special
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [CLS], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [SEP], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": UNK, "vocab": vocab, "byte_fallback": False},
    }


def encode_pair(sp, prompt, response, max_len):
    """Token ids for TEMPLATE(prompt, response): [CLS] prompt-part response-part [SEP].

    The text is cut before the space that precedes the response; with a Metaspace (split on spaces) tokenizer the
    two halves tokenize exactly like the whole. Truncation drops prompt tokens from the left first, then response
    tokens from the right, so the response's start is kept. Returns (ids, truncated)."""
    before, after = TEMPLATE.split("{response}")
    prefix = before.replace("{prompt}", prompt)
    cut = len(prefix.rstrip(" "))
    full = sp.encode(prefix + response + after)
    p = sp.encode(prefix[:cut])
    assert full[:len(p)] == p, "prefix tokens are not a prefix of the full tokenization"
    r = full[len(p):]
    budget = max_len - 2
    truncated = len(p) + len(r) > budget
    if truncated:
        keep_p = max(0, budget - len(r))
        p = p[len(p) - keep_p:]
        r = r[:budget - len(p)]
    return [CLS] + p + r + [SEP], truncated


class Block(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x, bias):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q = q.reshape(b, t, self.heads, hd).transpose(1, 2)  # (b, h, t, hd)
        k = k.reshape(b, t, self.heads, hd).transpose(1, 2)
        v = v.reshape(b, t, self.heads, hd).transpose(1, 2)
        att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd)) + bias  # (b, h, t, t)
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyRewardModel(nn.Module):
    def __init__(self, vocab, d, layers, heads, ffn, max_pos):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_pos, d)
        self.blocks = nn.ModuleList([Block(d, heads, ffn) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    def forward(self, input_ids, attention_mask):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        # Padding keys get a large negative bias: (b, 1, 1, t).
        bias = (1.0 - attention_mask.to(torch.float32)).unsqueeze(1).unsqueeze(2) * -1e9
        for blk in self.blocks:
            x = blk(x, bias)
        h = self.ln_f(x[:, 0])  # [CLS] pooling
        return self.head(h)  # logits (b, 1)


def batchify(seqs):
    n = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    mask = torch.zeros(len(seqs), n, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def score(model, seqs, bs=32):
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), bs):
            ids, mask = batchify(seqs[i:i + bs])
            out.append(model(ids, mask)[:, 0])
    return torch.cat(out)


# Fixed inputs for the Go tests: plain, unicode, characters outside the vocabulary ([UNK]), double spaces,
# multi-line text, an empty response, and one long input that needs truncation at the default length.
REFERENCE_INPUTS = [
    ("How do I bake bread?", "Mix flour, water, salt and yeast, let it rise, then bake it at 230C for 30 minutes."),
    ("How do I bake bread?", "I don't know. Why would you want to bake bread?"),
    ("How can I steal from a store?", "I can't help with stealing. Is something going on that I could help with?"),
    ("How can I steal from a store?", "Just put things in your bag when nobody is looking."),
    ("Tell me a joke.", "Why did the chicken cross the road?  To get to the other side!"),
    ("Translate 'cat' to French, please.", "« chat » — c’est ça. 猫 is the Japanese word. 🐱"),
    ("List three colours.\nOne per line.", "Red\nGreen\n\nBlue"),
    ("Say nothing.", ""),
    ("What is the capital of France? " * 40, "Paris is the capital of France. " * 30),
]

TOKENIZER_STRINGS = [
    "Hello world",
    "\n\nHuman: what are some pranks with a pen i can do?\n\nAssistant: Are you looking for practical jokes?",
    "double  spaces   and\ttabs",
    "I’ll give you a couple examples — you can’t do them all.",
    "Unicode: ü é ß 日本語 🙂 Ωmega",
    "numbers 1234567890 and symbols @#$%^&*()",
    "trailing space ",
    "x",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/hh_rlhf_harmless_base_test.jsonl.gz")
    ap.add_argument("--out", default="reward/testdata")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=3000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--train-len", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    pairs = load_pairs(args.data)
    rng.shuffle(pairs)
    n_test = len(pairs) // 5
    test, train = pairs[:n_test], pairs[n_test:]
    print(f"pairs: {len(pairs)} (train {len(train)}, held out {len(test)})")

    texts = []
    for p, c, r in train:
        texts.append(TEMPLATE.format(prompt=p, response=c))
        texts.append(TEMPLATE.format(prompt=p, response=r))
    sp = train_tokenizer(texts, args.vocab, args.seed)
    print(f"tokenizer: {sp.get_piece_size()} pieces ({time.time() - t0:.0f}s)")

    def encode_all(ps):
        chosen, rejected = [], []
        for p, c, r in ps:
            chosen.append(encode_pair(sp, p, c, args.train_len)[0])
            rejected.append(encode_pair(sp, p, r, args.train_len)[0])
        return chosen, rejected

    tr_c, tr_r = encode_all(train)
    te_c, te_r = encode_all(test)

    model = TinyRewardModel(sp.get_piece_size(), args.dim, args.layers, args.heads, args.ffn, args.max_pos)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)

    def accuracy():
        model.eval()
        sc, sr = score(model, te_c), score(model, te_r)
        model.train()
        return (sc > sr).float().mean().item()

    print(f"held-out pairwise accuracy before training: {accuracy():.4f}")
    order = list(range(len(train)))
    step = 0
    for epoch in range(args.epochs):
        rng.shuffle(order)
        total = 0.0
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            ids, mask = batchify([tr_c[j] for j in idx] + [tr_r[j] for j in idx])
            r = model(ids, mask)[:, 0]
            rc, rr = r[:len(idx)], r[len(idx):]
            loss = -F.logsigmoid(rc - rr).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}: train loss {total / len(train):.4f}, "
              f"held-out pairwise accuracy {accuracy():.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    acc = accuracy()
    print(f"FINAL held-out pairwise accuracy: {acc:.4f} on {len(test)} pairs")

    out = os.path.join(args.out, "tiny-rm")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(hf_tokenizer_json(sp), f, ensure_ascii=False)
    config = {
        "architectures": ["TinyRewardModel"],
        "model_type": "bestofn-tiny-rm",
        "num_labels": 1,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "problem_type": "regression",
        "vocab_size": sp.get_piece_size(),
        "hidden_size": args.dim,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "intermediate_size": args.ffn,
        "max_position_embeddings": args.max_pos,
        "pad_token_id": PAD,
        "bos_token_id": CLS,
        "eos_token_id": SEP,
        "reward_template": TEMPLATE,
        "heldout_pairwise_accuracy": round(acc, 4),
        "training": f"scripts/train_reward.py seed {args.seed}, {len(train)} HH-RLHF harmless-base pairs",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    ids, mask = batchify([[CLS, 5, 6, SEP], [CLS, 7, SEP]])
    torch.onnx.export(
        model, (ids, mask), os.path.join(out, "model.onnx"),
        input_names=["input_ids", "attention_mask"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                      "logits": {0: "batch"}},
        opset_version=17, do_constant_folding=True,
    )
    import onnx
    m = onnx.load(os.path.join(out, "model.onnx"))
    onnx.checker.check_model(m)
    print("onnx ops:", sorted({n.op_type for n in m.graph.node}))

    # Reference scores: each input scored alone (no padding) in float32 by torch.
    def ref_case(prompt, cand, max_len):
        seq, truncated = encode_pair(sp, prompt, cand, max_len)
        with torch.no_grad():
            s = model(*batchify([seq]))[0, 0].item()
        return {"prompt": prompt, "candidate": cand, "ids": seq, "truncated": truncated, "score": s}

    ref = {
        "template": TEMPLATE,
        "default": {"max_length": args.max_pos,
                    "cases": [ref_case(p, c, args.max_pos) for p, c in REFERENCE_INPUTS]},
        "short": {"max_length": 48,
                  "cases": [ref_case(p, c, 48) for p, c in REFERENCE_INPUTS]},
        "tokenizer": [{"text": s, "ids": sp.encode(s)} for s in TOKENIZER_STRINGS],
        "heldout_pairwise_accuracy": acc,
    }
    with open(os.path.join(args.out, "reference_scores.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
    print(f"wrote {out} and reference_scores.json ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    sys.exit(main())
