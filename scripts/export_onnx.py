#!/usr/bin/env python3
"""Export one of Duet's Hugging Face checkpoints to ONNX, laid out as transformers.js loads it.

The browser benchmark (`cargo xtask bench --browser`) runs Duet and transformers.js on the same
weights. This script writes, for a checkpoint SRC, a folder DST that serves both engines:

    DST/config.json, model.safetensors   the checkpoint in f32 (what Duet reads); a PEFT LoRA
                                         adapter is merged into its base first
    DST/tokenizer.json, tokenizer_config.json, [generation_config.json]
    DST/onnx/model.onnx                  fp32 ONNX, opset 17 (what transformers.js reads with
                                         `dtype: "fp32"`; other dtypes look for model_<suffix>.onnx)

Usage:

    ~/.cache/duet-py/bin/python scripts/export_onnx.py SRC_DIR DST_DIR

Supported: GPT2LMHeadModel (inputs input_ids, attention_mask, position_ids,
past_key_values.{i}.key/.value; outputs logits, present.{i}.key/.value: the names and layout of
Optimum's `text-generation-with-past` export, which transformers.js expects) and
{Bert,DistilBert}For{Sequence,Token}Classification (inputs input_ids, attention_mask and, for BERT,
token_type_ids; output logits).

The export checks itself and exits non-zero on a mismatch: onnxruntime against torch on the same
inputs (logits within 1e-4), and for GPT-2 a greedy decode through onnxruntime with the cache,
fed the way transformers.js feeds it, against HF `generate`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

# Must be set before `tokenizers` is imported to keep it quiet.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from safetensors import safe_open
from tokenizers import Tokenizer
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

transformers.logging.set_verbosity_error()
# The legacy (TorchScript) exporter is chosen on purpose: it needs only the `onnx` package, and the
# graphs below are written so that tracing keeps every length dynamic.
warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)

OPSET = 17  # LayerNormalization is a single op from 17; onnxruntime-web runs it
TOL = 1e-4
GREEDY_TOKENS = 12
PROMPTS = ["ROMEO:\nWhat say you, my lord?", "The king"]
SENTENCES = [
    "A quiet, patient story that rewards attention.",
    "Terrible.",
    "Angela Merkel met Emmanuel Macron in Berlin on 12 March 2019.",
]

AUTO_CLASSES = {
    "GPT2LMHeadModel": AutoModelForCausalLM,
    "BertForSequenceClassification": AutoModelForSequenceClassification,
    "DistilBertForSequenceClassification": AutoModelForSequenceClassification,
    "BertForTokenClassification": AutoModelForTokenClassification,
    "DistilBertForTokenClassification": AutoModelForTokenClassification,
}

# transformers.js builds the empty cache of the first step from the ONNX input shapes: it fills in
# `batch_size` and gives every other named axis 0. Keep these names.
BATCH, SEQ, PAST, TOTAL = "batch_size", "sequence_length", "past_sequence_length", "total_sequence_length"


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def load(src: Path):
    """The checkpoint as an f32 eager-attention model, the folder with its tokenizer, and for an
    adapter the (unmerged, merged) logits on a sample batch.

    A PEFT adapter folder (adapter_config.json + the task's config.json) is loaded onto its base
    the way Duet finds it (base_model_name_or_path relative to the adapter folder, else to the
    working directory), then merged: transformers.js has no LoRA, so both engines get the merge.
    """
    config = AutoConfig.from_pretrained(src)
    arch = (config.architectures or ["?"])[0]
    if arch not in AUTO_CLASSES:
        sys.exit(f"export_onnx: unsupported architecture {arch} (supported: {', '.join(AUTO_CLASSES)})")
    auto = AUTO_CLASSES[arch]
    # Eager attention: the torch reference then computes what the graphs compute (matmul, mask,
    # softmax), and no SDPA mask shortcut is taken on data seen at trace time. f32 also upcasts an
    # f16 base exactly.
    kw = dict(dtype=torch.float32, attn_implementation="eager")

    if not (src / "adapter_config.json").is_file():
        return auto.from_pretrained(src, **kw).eval(), src, None

    from peft import PeftModel

    base = json.loads((src / "adapter_config.json").read_text())["base_model_name_or_path"]
    base_dir = src / base if (src / base).is_dir() else Path(base)
    # The base has no task head; the adapter brings it (modules_to_save). Make sure it brings every
    # weight the base lacks, so nothing is left at its random initialisation.
    model, info = auto.from_pretrained(base_dir, config=config, output_loading_info=True, **kw)
    with safe_open(src / "adapter_model.safetensors", "pt") as f:
        saved = set(f.keys())
    missing = [k for k in info["missing_keys"] if f"base_model.model.{k}" not in saved]
    if missing:
        sys.exit(f"export_onnx: neither {base_dir} nor the adapter has {missing}")
    peft_model = PeftModel.from_pretrained(model, src).eval()
    sample = batch_inputs(tokenizer(base_dir), config, 3)
    with torch.no_grad():
        before = peft_model(**sample).logits.numpy()
        merged = peft_model.merge_and_unload().eval()
        after = merged(**sample).logits.numpy()
    return merged, base_dir, (before, after)


def tokenizer(folder: Path) -> Tokenizer:
    if not (folder / "tokenizer.json").is_file():
        sys.exit(f"export_onnx: {folder} has no tokenizer.json (transformers.js needs one)")
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def write_folder(model, tok_dir: Path, src: Path, dst: Path):
    """The f32 HF folder: weights and config by `save_pretrained`, tokenizer files copied."""
    model.save_pretrained(dst, safe_serialization=True)
    shutil.copy(tok_dir / "tokenizer.json", dst / "tokenizer.json")
    if (tok_dir / "tokenizer_config.json").is_file():
        shutil.copy(tok_dir / "tokenizer_config.json", dst / "tokenizer_config.json")
    else:
        # transformers.js reads tokenizer_config.json (required) for the tokenizer class and
        # special tokens; write the usual one for the model type.
        tok_config = default_tokenizer_config(model.config, tok_dir / "tokenizer.json")
        (dst / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    if (src / "generation_config.json").is_file():
        shutil.copy(src / "generation_config.json", dst / "generation_config.json")


def default_tokenizer_config(config, tokenizer_json: Path) -> dict:
    if config.model_type == "gpt2":
        eot = "<|endoftext|>"
        return {
            "tokenizer_class": "GPT2Tokenizer",
            "bos_token": eot,
            "eos_token": eot,
            "unk_token": eot,
            "add_prefix_space": False,
            "model_max_length": config.n_positions,
        }
    normalizer = json.loads(tokenizer_json.read_text()).get("normalizer") or {}
    tok_config = {
        "tokenizer_class": "DistilBertTokenizer" if config.model_type == "distilbert" else "BertTokenizer",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "mask_token": "[MASK]",
        "model_max_length": config.max_position_embeddings,
    }
    if "lowercase" in normalizer:  # BertNormalizer; other normalizers leave it unknown
        tok_config["do_lower_case"] = normalizer["lowercase"]
    return tok_config


# --------------------------------------------------------------------------
# GPT-2
# --------------------------------------------------------------------------
class GPT2WithPast(nn.Module):
    """GPT-2's forward written out over HF's modules, with the cache as plain tensors.

    HF's own forward slices its causal-mask buffer and sizes its cache with Python ints, which
    tracing freezes to the lengths seen at export; here every length comes from a tensor shape.
    Attention is GPT-2's eager attention: scores / sqrt(head_dim), masked, softmax.
    """

    def __init__(self, lm):
        super().__init__()
        cfg = lm.config
        if cfg.scale_attn_by_inverse_layer_idx or cfg.reorder_and_upcast_attn or not cfg.scale_attn_weights:
            sys.exit("export_onnx: GPT-2 attention variants (scale_attn_*, reorder_and_upcast_attn) are not written out")
        self.t, self.lm_head = lm.transformer, lm.lm_head
        self.heads, self.width = cfg.n_head, cfg.n_embd

    def forward(self, input_ids, attention_mask, position_ids, *past):
        h = self.t.wte(input_ids) + self.t.wpe(position_ids)
        batch, new = input_ids.shape[0], input_ids.shape[1]
        total = attention_mask.shape[1]
        # Query i sits at position total - new + i of the sequence; it sees the keys at or before
        # it that are not padding (the same mask as HF's cache_position-based one).
        q_pos = torch.arange(new) + (total - new)
        causal = torch.arange(total)[None, :] <= q_pos[:, None]
        visible = causal[None, None] & attention_mask[:, None, None, :].bool()
        # A large finite value, not -inf: a padding query that sees nothing gets a uniform softmax
        # instead of NaNs (which would reach the real rows through 0 * NaN).
        masked = torch.finfo(torch.float32).min

        def split(x):  # [batch, new, width] -> [batch, heads, new, head_dim]
            return x.view(batch, new, self.heads, self.width // self.heads).transpose(1, 2)

        presents = []
        for i, block in enumerate(self.t.h):
            q, k, v = block.attn.c_attn(block.ln_1(h)).split(self.width, dim=2)
            k = torch.cat([past[2 * i], split(k)], dim=2)
            v = torch.cat([past[2 * i + 1], split(v)], dim=2)
            presents += [k, v]
            scores = split(q) @ k.transpose(-1, -2) / math.sqrt(self.width // self.heads)
            probs = torch.where(visible, scores, masked).softmax(-1)
            context = (probs @ v).transpose(1, 2).reshape(batch, new, self.width)
            h = h + block.attn.c_proj(context)
            h = h + block.mlp(block.ln_2(h))
        return (self.lm_head(self.t.ln_f(h)), *presents)


def cache_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def export_gpt2(model, path: Path):
    cfg = model.config
    batch, new, past_len, head_dim = 2, 3, 5, cfg.n_embd // cfg.n_head  # distinct sizes: no axis is mistaken for another
    past = [torch.randn(batch, cfg.n_head, past_len, head_dim) for _ in range(2 * cfg.n_layer)]
    args = (
        torch.randint(0, cfg.vocab_size, (batch, new)),
        torch.ones(batch, past_len + new, dtype=torch.int64),
        torch.arange(past_len, past_len + new).repeat(batch, 1),
        *past,
    )
    past_names, present_names = cache_names("past_key_values", cfg.n_layer), cache_names("present", cfg.n_layer)
    axes = {
        "input_ids": {0: BATCH, 1: SEQ},
        "attention_mask": {0: BATCH, 1: TOTAL},
        "position_ids": {0: BATCH, 1: SEQ},
        "logits": {0: BATCH, 1: SEQ},
        **{n: {0: BATCH, 2: PAST} for n in past_names},
        **{n: {0: BATCH, 2: TOTAL} for n in present_names},
    }
    torch.onnx.export(
        GPT2WithPast(model).eval(),
        args,
        str(path),
        input_names=["input_ids", "attention_mask", "position_ids", *past_names],
        output_names=["logits", *present_names],
        dynamic_axes=axes,
        opset_version=OPSET,
        dynamo=False,
    )


def gpt2_feeds(ids, mask, positions, past):
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    feeds.update(zip(cache_names("past_key_values", len(past) // 2), past))
    return feeds


def cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(key, value) per layer of HF's cache object: transformers 4.x has `to_legacy_cache`,
    5.x (the GPU machines' image) keeps them in `layers`."""
    if hasattr(cache, "to_legacy_cache"):
        return list(cache.to_legacy_cache())
    return [(layer.keys, layer.values) for layer in cache.layers]


def check_gpt2(model, session, tok: Tokenizer, checks):
    cfg = model.config
    eos = cfg.eos_token_id
    # 1. Past length 0 (how transformers.js starts), two prompts left-padded into one batch, with
    # position ids as transformers.js makes them (cumsum of the mask - 1, 1 on padding).
    rows = [tok.encode(p).ids for p in PROMPTS]
    width = max(map(len, rows))
    ids = np.array([[eos] * (width - len(r)) + r for r in rows], dtype=np.int64)
    mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=np.int64)
    positions = np.where(mask == 1, mask.cumsum(-1) - 1, 1)
    empty = [np.zeros((2, cfg.n_head, 0, cfg.n_embd // cfg.n_head), np.float32)] * (2 * cfg.n_layer)
    out = session.run(None, gpt2_feeds(ids, mask, positions, empty))
    with torch.no_grad():
        ref = model(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
            position_ids=torch.from_numpy(positions), use_cache=True,
        )
    real = mask.astype(bool)  # padding rows are never read
    checks.report(f"GPT-2 logits, past 0, batch 2 left-padded ({width} tokens)", out[0][real], ref.logits.numpy()[real])

    # 2. Past length > 0: three more tokens per row on top of HF's own cache of step 1.
    past = [t.numpy() for layer in cache_layers(ref.past_key_values) for t in layer]
    more = np.array([rows[0][:3]] * 2, dtype=np.int64)
    mask2 = np.concatenate([mask, np.ones_like(more)], axis=1)
    positions2 = positions[:, -1:] + 1 + np.arange(3)
    out = session.run(None, gpt2_feeds(more, mask2, positions2, past))
    with torch.no_grad():
        ref2 = model(
            input_ids=torch.from_numpy(more), attention_mask=torch.from_numpy(mask2),
            position_ids=torch.from_numpy(positions2), past_key_values=ref.past_key_values, use_cache=True,
        )
    checks.report(f"GPT-2 logits, past {width}, batch 2, 3 new tokens", out[0], ref2.logits.numpy())

    # 3. Greedy decode with the cache, step by step as transformers.js runs it, against HF generate.
    prompt = np.array([tok.encode(PROMPTS[0]).ids], dtype=np.int64)
    with torch.no_grad():
        hf = model.generate(
            torch.from_numpy(prompt), attention_mask=torch.ones_like(torch.from_numpy(prompt)),
            do_sample=False, max_new_tokens=GREEDY_TOKENS, pad_token_id=eos,
        )[0, prompt.shape[1]:].tolist()
    ids, past, mine = prompt, [e[:1] for e in empty], []
    mask = np.ones_like(prompt)
    while len(mine) < GREEDY_TOKENS:
        total = mask.shape[1]
        positions = np.arange(total - ids.shape[1], total)[None]
        logits, *past = session.run(None, gpt2_feeds(ids, mask, positions, past))
        mine.append(int(logits[0, -1].argmax()))
        if mine[-1] == eos:
            break
        ids = np.array([[mine[-1]]], dtype=np.int64)
        mask = np.ones((1, total + 1), dtype=np.int64)
    checks.report_equal(f"GPT-2 greedy {GREEDY_TOKENS} tokens, onnxruntime with cache vs HF generate", mine, hf)
    print(f"  greedy continuation of {PROMPTS[0]!r}: {tok.decode(mine)!r}")


# --------------------------------------------------------------------------
# BERT / DistilBERT classifiers
# --------------------------------------------------------------------------
def bert_input_names(config) -> list[str]:
    # DistilBERT has no token types; BERT's are all 0 for single sentences (transformers.js fills
    # them in with zeros when the tokenizer does not).
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if config.model_type == "bert" else [])


def batch_inputs(tok: Tokenizer, config, n: int) -> dict[str, torch.Tensor]:
    tok.enable_padding(pad_id=config.pad_token_id or 0)
    enc = tok.encode_batch(SENTENCES[:n])
    tok.no_padding()
    tensors = {
        "input_ids": torch.tensor([e.ids for e in enc]),
        "attention_mask": torch.tensor([e.attention_mask for e in enc]),
        "token_type_ids": torch.tensor([e.type_ids for e in enc]),
    }
    return {k: tensors[k] for k in bert_input_names(config)}


class Logits(nn.Module):
    """The classifier with positional inputs and the logits alone (what the ONNX graph returns)."""

    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.names, inputs))).logits


def export_bert(model, tok: Tokenizer, path: Path):
    names = bert_input_names(model.config)
    inputs = batch_inputs(tok, model.config, 3)
    per_token = "TokenClassification" in model.config.architectures[0]
    torch.onnx.export(
        Logits(model, names).eval(),
        tuple(inputs.values()),
        str(path),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**{n: {0: BATCH, 1: SEQ} for n in names}, "logits": {0: BATCH, 1: SEQ} if per_token else {0: BATCH}},
        opset_version=OPSET,
        dynamo=False,
    )


def check_bert(model, session, tok: Tokenizer, checks):
    for n in (1, 3):
        inputs = batch_inputs(tok, model.config, n)
        out = session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
        with torch.no_grad():
            ref = model(**inputs).logits.numpy()
        shape = "x".join(map(str, inputs["input_ids"].shape))
        checks.report(f"logits, batch {n}{' padded' if n > 1 else ''} ({shape} tokens)", out, ref)


# --------------------------------------------------------------------------
class Checks:
    def __init__(self):
        self.ok = True

    def report(self, name, got, want):
        diff = float(np.abs(np.asarray(got) - np.asarray(want)).max())
        self._line(name, f"max |diff| {diff:.2e}", diff <= TOL)

    def report_equal(self, name, got, want):
        self._line(name, f"{got} vs {want}", got == want)

    def _line(self, name, figure, ok):
        self.ok &= ok
        print(f"{name}: {figure} {'ok' if ok else 'MISMATCH'}")


def main(src: Path, dst: Path):
    t0 = time.perf_counter()
    torch.manual_seed(0)  # the random example inputs of the export
    model, tok_dir, merge = load(src)
    tok = tokenizer(tok_dir)
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "onnx").mkdir(parents=True)
    write_folder(model, tok_dir, src, dst)

    path = dst / "onnx" / "model.onnx"
    gpt2 = model.config.model_type == "gpt2"
    with torch.no_grad():
        if gpt2:
            export_gpt2(model, path)
        else:
            export_bert(model, tok, path)
    onnx.checker.check_model(str(path))
    exported = time.perf_counter() - t0
    print(f"{src} -> {path} ({path.stat().st_size / 1e6:.1f} MB, opset {OPSET}, {exported:.1f} s)")

    checks = Checks()
    if merge is not None:
        checks.report("LoRA merged vs unmerged (torch, batch 3 padded)", merge[1], merge[0])
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about unused initialisers etc.
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (check_gpt2 if gpt2 else check_bert)(model, session, tok, checks)
    print(f"checked in {time.perf_counter() - t0 - exported:.1f} s")
    sys.exit(0 if checks.ok else 1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_onnx.py SRC_DIR DST_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
