#!/usr/bin/env python3
"""PyTorch figures for the same measurements as `duet bench` (model/src/bench.rs): greedy
generation tokens/s with and without the KV cache, and sentences/s for sequence classification.

Usage: bench_torch.py --model DIR [--model DIR ...] [--new-tokens N] [--batch-size B] [--rounds R]
                      [--device cpu|cuda]
Prints one JSON list, one entry per model. On the CPU with the threads torch picks, or on CUDA
(`cargo xtask bench --device gpu`), timed up to the device's last kernel.
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


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def bench_generation(path, new_tokens, device):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval().to(device)
    ids = tok(PROMPT, return_tensors="pt").input_ids.to(device)
    new_tokens = min(new_tokens, model.config.n_positions - ids.shape[1] - 1)
    rates = {}
    for use_cache in (True, False):
        kw = dict(do_sample=False, use_cache=use_cache, pad_token_id=tok.eos_token_id)
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
        sync(device)
        dt = time.perf_counter() - t0
        rates[use_cache] = (out.shape[1] - ids.shape[1]) / dt
    return {
        "prompt_tokens": ids.shape[1],
        "new_tokens": new_tokens,
        "cached_tokens_per_s": rates[True],
        "uncached_tokens_per_s": rates[False],
    }


@torch.no_grad()
def bench_classify(path, batch_size, rounds, device):
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, torch_dtype=torch.float32).eval().to(device)

    def run(texts):
        enc = tok(texts, padding=True, return_tensors="pt").to(device)
        # Read back, as Duet's pipeline does.
        return model(**enc).logits.softmax(-1).cpu()

    run(SENTENCES[:batch_size])  # warm-up
    n = 0
    t0 = time.perf_counter()
    for _ in range(rounds):
        for i in range(0, len(SENTENCES), batch_size):
            chunk = SENTENCES[i : i + batch_size]
            run(chunk)
            n += len(chunk)
    sync(device)
    return {"sentences": n, "batch_size": batch_size, "sentences_per_s": n / (time.perf_counter() - t0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("bench_torch.py: --device cuda, but this torch sees no CUDA device")
        where = f"CUDA, {torch.cuda.get_device_name(0)}"
    else:
        where = f"CPU, {torch.get_num_threads()} threads"
    rows = []
    for path in args.model:
        cfg = AutoConfig.from_pretrained(path)
        row = {"model": path, "architecture": cfg.architectures[0], "backend": f"PyTorch {torch.__version__} ({where})"}
        if cfg.model_type == "gpt2":
            row["generation"] = bench_generation(path, args.new_tokens, args.device)
        else:
            row["classify"] = bench_classify(path, args.batch_size, args.rounds, args.device)
        rows.append(row)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
