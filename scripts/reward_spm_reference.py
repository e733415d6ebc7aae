#!/usr/bin/env python3
"""Reference data for DeBERTa-v3-style tokenizer.json files (SentencePiece Unigram with the nmt_nfkc normalization
compiled into a "precompiled_charsmap").

Trains a small SentencePiece Unigram model with sentencepiece's default normalization (nmt_nfkc, extra whitespace
removed) on HH-RLHF text, writes it as the tokenizer.json transformers' DebertaV2Converter emits (normalizer
Sequence[Strip, Precompiled, Replace(Regex " {2,}", " ")], pre_tokenizer Sequence[Metaspace]) to
reward/testdata/spm-nfkc/tokenizer.json, and the ids the sentencepiece library gives for fixed strings to
reward/testdata/spm_nfkc_reference.json.

    /usr/bin/python3 scripts/reward_spm_reference.py
"""
import base64
import gzip
import io
import json
import random

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

texts = []
with gzip.open("../shared/data/hh_rlhf_harmless_base_test.jsonl.gz", "rt", encoding="utf-8") as f:
    for line in f:
        texts.extend(t for t in json.loads(line)["chosen"].split("\n") if t.strip())
random.Random(5).shuffle(texts)
texts = texts[:4000] + ["ＡＢＣ １２３ ﬁne ½ ① café naïve Ω", "“quotes” ‘single’ — dash … ellipsis"]

buf = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=buf, model_type="unigram",
                               vocab_size=800, character_coverage=0.9995, num_threads=1, minloglevel=2,
                               pad_id=0, unk_id=1, bos_id=2, eos_id=3,
                               pad_piece="[PAD]", unk_piece="[UNK]", bos_piece="[CLS]", eos_piece="[SEP]")
sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
proto = pb.ModelProto()
proto.ParseFromString(buf.getvalue())
charsmap = proto.normalizer_spec.precompiled_charsmap
assert proto.normalizer_spec.name == "nmt_nfkc" and charsmap

tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True}
                     for i, s in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()},
        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
    ]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}},
                                  {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                       "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                          "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
    "model": {"type": "Unigram", "unk_id": 1, "byte_fallback": False,
              "vocab": [[sp.id_to_piece(i), sp.get_score(i)] for i in range(sp.get_piece_size())]},
}
with open("reward/testdata/spm-nfkc/tokenizer.json", "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False)

# Strings where HF tokenizers and sentencepiece agree (no leading whitespace-like characters).
strings = [
    "Hello world, how are you?",
    "ＡＢＣ １２３ full-width",
    "ﬁne ligature, ½ half, ① circled, ™ mark",
    "café naïve résumé Ω Å",
    "cafe\u0301 combining accent",
    "many    spaces\tand\ttabs\nand\nnewlines  ",
    "non\u00a0breaking\u3000ideographic space",
    "“quotes” ‘single’ — dash … ellipsis",
    "日本語のテキスト ｶﾀｶﾅ",
    "emoji 🙂 and 👍🏽 skin tone",
    "x",
]
ref = [{"text": s, "ids": sp.encode(s)} for s in strings]
with open("reward/testdata/spm_nfkc_reference.json", "w", encoding="utf-8") as f:
    json.dump(ref, f, ensure_ascii=False, indent=1)
for r in ref:
    print(repr(r["text"]), sp.encode(r["text"], out_type=str))
