#!/usr/bin/env python3
"""PyTorch figures for the same measurements as `duet bench` (model/src/bench.rs): greedy
generation tokens/s with and without the KV cache, and sentences/s for sequence classification.

Usage: bench_torch.py --model DIR [--model DIR ...] [--new-tokens N] [--batch-size B] [--rounds R]
Prints one JSON list, one entry per model. Runs on CPU with the threads torch picks.
"""
import argparse
import json
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

# Keep in step with model/src/bench.rs and model/src/bin/duet.rs.
PROMPT = "The quick brown fox jumps over the lazy dog, and then"
SENTENCES = [
    "I loved this film.",
    "The plot was thin, but the actors made it worth watching on a rainy afternoon.",
    "Terrible.",
    "Nothing about the service, the food or the prices would make me come back here again.",
    "A quiet, patient story that rewards attention.",
    "The battery lasts two days and the screen is bright enough to read in sunlight.",
    "It broke after a week.",
    "Surprisingly funny, with a soundtrack I still hum.",
]


@torch.no_grad()
def bench_generation(path, new_tokens):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids
    new_tokens = min(new_tokens, model.config.n_positions - ids.shape[1] - 1)
    rates = {}
    for use_cache in (True, False):
        kw = dict(do_sample=False, use_cache=use_cache, pad_token_id=tok.eos_token_id)
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)  # warm-up
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
        dt = time.perf_counter() - t0
        rates[use_cache] = (out.shape[1] - ids.shape[1]) / dt
    return {
        "prompt_tokens": ids.shape[1],
        "new_tokens": new_tokens,
        "cached_tokens_per_s": rates[True],
        "uncached_tokens_per_s": rates[False],
    }


@torch.no_grad()
def bench_classify(path, batch_size, rounds):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, torch_dtype=torch.float32).eval()

    def run(texts):
        enc = tok(texts, padding=True, return_tensors="pt")
        return model(**enc).logits.softmax(-1)

    run(SENTENCES[:batch_size])  # warm-up
    n = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for i in range(0, len(SENTENCES), batch_size):
            chunk = SENTENCES[i : i + batch_size]
            run(chunk)
            n += len(chunk)
    return {"sentences": n, "batch_size": batch_size, "sentences_per_s": n / (time.perf_counter() - t0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for path in args.model:
        cfg = AutoConfig.from_pretrained(path)
        row = {"model": path, "architecture": cfg.architectures[0], "backend": f"PyTorch {torch.__version__} (CPU, {torch.get_num_threads()} threads)"}
        if cfg.model_type == "gpt2":
            row["generation"] = bench_generation(path, args.new_tokens)
        else:
            row["classify"] = bench_classify(path, args.batch_size, args.rounds)
        rows.append(row)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
