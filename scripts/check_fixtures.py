#!/usr/bin/env python3
"""Reload the committed fixtures *from disk* with transformers and compare
them against their expected.json (run after scripts/make_fixtures.py).

make_fixtures.py computes the references from in-memory objects; this script
checks that what actually landed on disk (configs, tokenizer files, dtype
casts, key layouts) gives the same answers when loaded the normal HF way,
and documents how HF itself treats the unusual layouts:

* gpt2-noprefix-f16: from_pretrained adds the missing `transformer.` prefix.
* bert-tokcls-legacy: from_pretrained refuses this layout (base-model keys
  without `bert.` plus a task head); we load it with a manual key mapping.
* f16 / bf16 files are upcast with dtype=torch.float32.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForSequenceClassification
from transformers import AutoModelForTokenClassification, AutoTokenizer, GPT2LMHeadModel, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import FIXTURES, plain  # noqa: E402

torch.set_num_threads(1)
transformers.logging.set_verbosity_error()
ATOL = 1e-5


def load(name):
    return json.loads((FIXTURES / name / "expected.json").read_text(encoding="utf-8"))


def close(a, b, what):
    diff = float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())
    assert diff <= ATOL, f"{what}: max abs diff {diff}"


def same_scores(got, want, what):
    """Pipeline outputs: identical structure, scores equal up to ATOL."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), (what, got.keys(), want.keys())
        for k in want:
            same_scores(got[k], want[k], f"{what}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), (what, len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            same_scores(g, w, f"{what}[{i}]")
    elif isinstance(want, float):
        assert abs(got - want) <= ATOL, (what, got, want)
    else:
        assert got == want, (what, got, want)


def check_gpt2(name):
    exp = load(name)
    d = FIXTURES / name
    tok = AutoTokenizer.from_pretrained(d)  # noprefix: rebuilt from vocab.json + merges.txt
    model = GPT2LMHeadModel.from_pretrained(d, dtype=torch.float32).eval()
    with torch.no_grad():
        for rec in exp["logits"]:
            assert tok(rec["text"])["input_ids"] == rec["input_ids"], rec["text"]
            close(model(torch.tensor([rec["input_ids"]])).logits[0], rec["logits"], f"{name} logits")
        for rec in exp["greedy"]:
            ids = torch.tensor([rec["input_ids"]])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=24, min_new_tokens=24, pad_token_id=tok.eos_token_id)
            new = out[0, ids.shape[1]:].tolist()
            assert new == rec["new_token_ids"], name
            assert tok.decode(rec["input_ids"] + new) == rec["generated_text"]
            # the text-generation pipeline shows the same full text
            gen = pipeline("text-generation", model=model, tokenizer=tok, device=-1)
            full = gen(rec["prompt"], do_sample=False, max_new_tokens=24, min_new_tokens=24,
                       pad_token_id=tok.eos_token_id)[0]["generated_text"]
            assert full == rec["generated_text"], (full, rec["generated_text"])
        for rec in exp["processors"]:
            close(model(torch.tensor([rec["input_ids"]])).logits[0, -1], rec["raw_logits"], f"{name} raw")
    print(f"ok {name}")


def check_encoder(name, auto_cls, task):
    exp = load(name)
    d = FIXTURES / name
    tok = AutoTokenizer.from_pretrained(d)
    if name == "bert-tokcls-legacy":
        # HF cannot load it directly: no key starts with "bert", so it tries to
        # load "a base model into a task model" and rejects `classifier.*`.
        try:
            auto_cls.from_pretrained(d)
            raise AssertionError("expected HF to reject the legacy layout")
        except ValueError as e:
            assert "corrupted" in str(e), e
        config = AutoConfig.from_pretrained(d)
        model = auto_cls.from_config(config).eval()
        sd = {}
        for k, v in load_file(str(d / "model.safetensors")).items():
            k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
            sd[k if k.startswith("classifier.") else "bert." + k] = v.float()
        model.load_state_dict(sd, strict=True)
    else:
        model = auto_cls.from_pretrained(d, dtype=torch.float32).eval()

    texts = [e["text"] for e in exp["encodings"]]
    with torch.no_grad():
        for rec in exp["encodings"]:
            enc = tok(rec["text"], return_offsets_mapping=True, return_token_type_ids=True)
            assert enc["input_ids"] == rec["input_ids"], (name, rec["text"])
            assert enc["token_type_ids"] == rec["token_type_ids"]
            assert [list(o) for o in enc["offset_mapping"]] == rec["offsets"]
        # one padded batch, as the Rust tests run it
        batch = tok(texts, padding=True, return_tensors="pt")
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        for i, rec in enumerate(exp["encodings"]):
            n = len(rec["input_ids"])
            close(logits[i] if task == "text-classification" else logits[i, :n], rec["logits"], f"{name} {i}")

    if task == "token-classification":
        for text, want in zip(texts, exp["pipeline"]):
            for strategy, ents in want.items():
                p = pipeline(task, model=model, tokenizer=tok, aggregation_strategy=strategy, device=-1)
                same_scores(plain(p(text)), ents, f"{name} {strategy}")
        if "long" in exp:
            long = exp["long"]
            for strategy in ("simple", "first", "average", "max"):
                p = pipeline(task, model=model, tokenizer=tok, aggregation_strategy=strategy,
                             stride=long["stride"], device=-1)
                same_scores(plain(p(long["text"])), long[strategy], f"{name} long {strategy}")
    else:
        kw = {"top_k": None} if task == "text-classification" else {"top_k": 5}
        p = pipeline(task, model=model, tokenizer=tok, device=-1)
        for text, want in zip(texts, exp["pipeline"]):
            same_scores(plain(p(text, **kw)), want, f"{name} pipeline")
    print(f"ok {name}")


def main():
    for name in ("gpt2-tiny", "gpt2-noprefix-f16", "gpt2-bf16"):
        check_gpt2(name)
    check_encoder("bert-seqcls", AutoModelForSequenceClassification, "text-classification")
    check_encoder("distilbert-multilabel", AutoModelForSequenceClassification, "text-classification")
    check_encoder("bert-tokcls-legacy", AutoModelForTokenClassification, "token-classification")
    check_encoder("distilbert-tokcls", AutoModelForTokenClassification, "token-classification")
    check_encoder("bert-mlm-f16", AutoModelForMaskedLM, "fill-mask")
    check_encoder("distilbert-mlm", AutoModelForMaskedLM, "fill-mask")
    print("all fixtures reload consistently")


if __name__ == "__main__":
    main()
