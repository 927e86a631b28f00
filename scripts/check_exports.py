#!/usr/bin/env python3
"""Loads Duet's exports with `transformers` and `peft` and checks they give the Rust model's
outputs. Run after the export code changes:

    DUET_EXPORT_DIR=/tmp/duet-exports cargo test --test training exports_round_trip
    ~/.cache/duet-py/bin/python scripts/check_exports.py /tmp/duet-exports

The Rust test writes `full/` (a merged checkpoint), `adapter/` (PEFT LoRA adapter + the task's
config.json) and `expected.json` (base model folder, input ids, the Rust logits); and, with
`cargo test --test training masked_lm_training` under the same variable, `mlm/` (a masked LM trained
by Duet, its MLM head created by Duet) with the Rust fill-mask top 5 in `mlm/expected.json`;
and, with `cargo test --test side_by_side`, `pretrained-gpt/` and `pretrained-bert/` (the Pretrain
page's models, their tokenizers trained by Duet) with the Rust token ids and top 5.
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoModelForSequenceClassification, AutoTokenizer)

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

        mlm_dir = root / "mlm"
        if (mlm_dir / "expected.json").is_file():
            mexp = json.loads((mlm_dir / "expected.json").read_text())
            tok = AutoTokenizer.from_pretrained(mlm_dir)
            mlm = AutoModelForMaskedLM.from_pretrained(mlm_dir).eval()
            enc = tok(mexp["text"], return_tensors="pt")
            at = (enc.input_ids[0] == tok.mask_token_id).nonzero()[0].item()
            probs = mlm(**enc).logits[0, at].softmax(-1)
            top = probs.topk(5)
            same = top.indices.tolist() == mexp["top5"]
            print(f"transformers fill-mask top 5 of Duet's masked LM: {top.indices.tolist()} vs {mexp['top5']} {'ok' if same else 'MISMATCH'}")
            ok &= same and check("  their scores", top.values.tolist(), mexp["scores"])
        else:
            print("no mlm/ export: run the masked_lm_training test with DUET_EXPORT_DIR too")
            ok = False
        for name, family in [("pretrained-gpt", AutoModelForCausalLM), ("pretrained-bert", AutoModelForMaskedLM)]:
            d = root / name
            if not (d / "expected.json").is_file():
                print(f"no {name}/ export: run the side_by_side tests with DUET_EXPORT_DIR too")
                ok = False
                continue
            pexp = json.loads((d / "expected.json").read_text())
            tok = AutoTokenizer.from_pretrained(d)
            enc = tok(pexp["text"], return_tensors="pt")
            same_ids = enc.input_ids[0].tolist() == pexp["input_ids"]
            print(f"{name}: transformers' tokenizer gives Duet's ids {'ok' if same_ids else 'MISMATCH'}")
            model = family.from_pretrained(d).eval()
            logits = model(**enc).logits[0]
            if name == "pretrained-gpt":
                top = logits[-1].topk(5)
                values = top.values.tolist()
                want = pexp["logits"]
            else:
                at = (enc.input_ids[0] == tok.mask_token_id).nonzero()[0].item()
                top = logits[at].softmax(-1).topk(5)
                values = top.values.tolist()
                want = pexp["scores"]
            same = top.indices.tolist() == pexp["top5"]
            print(f"{name}: top 5 {top.indices.tolist()} vs {pexp['top5']} {'ok' if same else 'MISMATCH'}")
            ok &= same_ids and same and check(f"  {name} values", values, want)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/duet-exports"))
