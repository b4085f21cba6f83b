#!/usr/bin/env python3
"""Reference all-MiniLM-L6-v2 sentence embeddings, computed without Cairn's
code or any ML library: a BERT-uncased WordPiece tokenizer written here from
vocab.txt, a safetensors reader written here, and the BERT forward pass and
sentence-transformers pooling (mean over real tokens, L2 norm) in numpy.

It wrote crates/cairn-minilm/tests/fixtures/reference.json, the golden
vectors the Rust embedder is checked against:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy
    /tmp/ref/bin/python tools/minilm_reference.py ~/.cache/cairn/ai-models/all-minilm-l6-v2 \
        > crates/cairn-minilm/tests/fixtures/reference.json
"""

import json
import math
import struct
import sys
import unicodedata

import numpy as np

SENTENCES = [
    "When did Melanie paint a sunrise?",
    "Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
    "The quick brown fox jumps over the lazy dog.",
    "Überraschung! naïve café owners don't like 10,000-word essays; they're busy.",
]


def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":  # e.g. the I64 embeddings.position_ids buffer
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(meta["shape"])
    return out


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokens(text):
    # BertNormalizer: clean control chars, lowercase, strip accents (as
    # strip_accents=None follows lowercase in BERT-uncased).
    text = "".join(" " if ch.isspace() else ch for ch in text if ord(ch) != 0 and unicodedata.category(ch) != "Cc" or ch in "\t\n\r")
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    words, cur = [], ""
    for ch in text:
        if ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif is_punct(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text, vocab):
    toks = ["[CLS]"]
    for w in basic_tokens(text):
        toks.extend(wordpiece(w, vocab))
    toks = toks[:255] + ["[SEP]"]
    return [vocab[t] for t in toks]


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


erf = np.vectorize(math.erf)


def embed(ids, W, cfg):
    n = len(ids)
    h = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:n] + W["embeddings.token_type_embeddings.weight"][0]
    h = layer_norm(h, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], cfg["layer_norm_eps"])
    heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda x, name: x @ W[p + name + ".weight"].T + W[p + name + ".bias"]
        q = lin(h, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(h, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(h, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        h = layer_norm(lin(ctx, "attention.output.dense") + h, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], cfg["layer_norm_eps"])
        inter = lin(h, "intermediate.dense")
        inter = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))
        h = layer_norm(lin(inter, "output.dense") + h, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], cfg["layer_norm_eps"])
    v = h.mean(0)
    return v / np.linalg.norm(v)


def main():
    d = sys.argv[1]
    cfg = json.load(open(f"{d}/config.json"))
    vocab = {line.rstrip("\n"): i for i, line in enumerate(open(f"{d}/vocab.txt", encoding="utf-8"))}
    W = {k: v.astype(np.float64) for k, v in load_safetensors(f"{d}/model.safetensors").items()}
    rows = []
    for s in SENTENCES:
        ids = tokenize(s, vocab)
        vec = embed(ids, W, cfg)
        rows.append({"text": s, "token_ids": ids, "vector": [round(float(x), 7) for x in vec]})
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "made_by": "tools/minilm_reference.py (numpy, float64)", "sentences": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
