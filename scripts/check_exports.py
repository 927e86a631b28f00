#!/usr/bin/env python3
"""Loads Duet's exports with `transformers` and `peft` and checks they give the Rust model's
outputs. Run after the export code changes:

    DUET_EXPORT_DIR=/tmp/duet-exports cargo test --test training exports_round_trip
    ~/.cache/duet-py/bin/python scripts/check_exports.py /tmp/duet-exports

The Rust test writes `full/` (a merged checkpoint), `adapter/` (PEFT LoRA adapter + the task's
config.json) and `expected.json` (base model folder, input ids, the Rust logits).
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification

TOL = 1e-4


def check(name, logits, expected):
    diff = (torch.tensor(logits) - torch.tensor(expected)).abs().max().item()
    status = "ok" if diff <= TOL else "MISMATCH"
    print(f"{name}: max |diff| {diff:.2e} {status}")
    return diff <= TOL


def main(root: Path):
    exp = json.loads((root / "expected.json").read_text())
    ids = torch.tensor([exp["input_ids"]])
    ok = True
    with torch.no_grad():
        full = AutoModelForSequenceClassification.from_pretrained(root / "full").eval()
        ok &= check("transformers loads the full checkpoint", full(input_ids=ids).logits[0].tolist(), exp["logits"])

        task = AutoConfig.from_pretrained(root / "adapter")
        base = AutoModelForSequenceClassification.from_pretrained(
            exp["base"], num_labels=task.num_labels, id2label=task.id2label, label2id=task.label2id,
            ignore_mismatched_sizes=True,
        )
        peft_model = PeftModel.from_pretrained(base, root / "adapter").eval()
        ok &= check("peft loads the LoRA adapter", peft_model(input_ids=ids).logits[0].tolist(), exp["logits"])
        merged = peft_model.merge_and_unload()
        ok &= check("peft merge_and_unload", merged(input_ids=ids).logits[0].tolist(), exp["logits"])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/duet-exports"))
