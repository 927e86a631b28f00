#!/usr/bin/env python3
"""Record a few AdamW fine-tuning steps in PyTorch, for the Rust training tests.

The Rust crate (model/) fine-tunes GPT-2 / BERT / DistilBERT (optionally with
LoRA). Its tests start from the tiny checkpoints that scripts/make_fixtures.py
wrote under model/tests/fixtures/<name>/, run the same three optimizer steps
on the same explicit batches, and compare losses, learning rates, gradient
norms, first-step gradients and final weights against the numbers written
here to model/tests/fixtures/train/<case>.json.

Usage (from anywhere; needs the fixtures from make_fixtures.py):

    pip install -r scripts/requirements.txt
    python scripts/make_train_fixtures.py           # all cases
    python scripts/make_train_fixtures.py seqcls    # only the named ones

What "a step" means is exactly what the HF Trainer does with
`learning_rate=LR, weight_decay=0.01, warmup_steps=1, max_steps=3,
lr_scheduler_type="linear", max_grad_norm=1.0` (and the default AdamW betas
/ eps), except that the model stays in eval() mode: dropout would make the
numbers random, and the Rust side must switch it off too.

  * Parameter groups: weight decay on every trainable parameter except the
    ones Trainer.get_decay_parameter_names excludes (biases, LayerNorm).
  * torch.optim.AdamW + get_linear_schedule_with_warmup(1 warmup, 3 total):
    the learning rates of the three steps are 0, LR, LR/2. The lr=0 step still
    matters: it fills AdamW's moment estimates (and advances its step count,
    hence the bias corrections) without moving any weight.
  * Per step: forward with labels -> loss.backward() -> clip_grad_norm_(1.0)
    -> opt.step() -> sched.step() -> zero_grad().

Inputs are written as token ids (no tokenization on the Rust side). Each batch
holds sequences of different lengths, right-padded with id 0 and masked with
attention_mask, so padding/masking bugs change the numbers.

Determinism: seeded generators, one CPU thread, fixed dict orders and the
float formatting of make_fixtures.py; re-running gives byte-identical files.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    Trainer,
    get_linear_schedule_with_warmup,
)

import peft
from peft import LoraConfig, TaskType, get_peft_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import FIXTURES, dumps, f32, floats  # noqa: E402  (same float/JSON conventions)

# Single-threaded CPU kernels: reductions are split the same way on every run.
torch.set_num_threads(1)
transformers.logging.set_verbosity_error()

OUT = FIXTURES / "train"
GENERATOR = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}

# Shared optimizer settings (learning rate varies per case).
WEIGHT_DECAY = 0.01
WARMUP_STEPS = 1
TOTAL_STEPS = 3
MAX_GRAD_NORM = 1.0
BETAS = (0.9, 0.999)
EPS = 1e-8

PAD_ID = 0  # [PAD] of the BERT fixtures; <|endoftext|> for gpt2-tiny
CLS_ID, SEP_ID = 2, 3  # checked against the fixture tokenizer in make_batches
MASK_ID = 4
FIRST_FREE_ID = 5  # BERT ids 0..4 are the special tokens


# --------------------------------------------------------------------------
# Cases
#
# `params`: which parameters to dump in full (grads_step0 / weights_after).
# Small ones only: every float costs ~12 bytes of JSON and the whole train/
# directory must stay small. In particular the word embeddings (12-16k floats
# each, x2 for grad + weight) would blow the budget; instead a few of their
# rows are recorded under "embedding_rows" (used ids, whose rows get gradient,
# and an unused id, whose row only decays - or, for GPT-2's tied lm_head,
# still gets gradient from the output projection).
# Names are plain model names (no PEFT wrapper) except LoRA matrices, which use
# PEFT's saved naming `base_model.model.<module>.lora_A.weight`.
# --------------------------------------------------------------------------
CASES = {
    "seqcls": {
        "base": "bert-seqcls",
        "task": "sequence-classification",
        "lr": 1e-3,
        "seed": 101,
        "lora": None,
        "params": [
            "bert.encoder.layer.1.attention.self.query.weight",  # Linear weight inside a layer (decayed)
            "bert.encoder.layer.1.attention.self.query.bias",  # its bias (no decay)
            "bert.encoder.layer.1.output.LayerNorm.weight",  # LayerNorm (no decay)
            "bert.pooler.dense.weight",
            "classifier.weight",  # head
            "classifier.bias",
        ],
        "embedding": "bert.embeddings.word_embeddings.weight",
    },
    "tokcls": {
        "base": "distilbert-tokcls",
        "task": "token-classification",
        "lr": 1e-3,
        "seed": 102,
        "lora": None,
        "params": [
            "distilbert.transformer.layer.1.attention.q_lin.weight",
            "distilbert.transformer.layer.1.attention.q_lin.bias",
            "distilbert.transformer.layer.1.sa_layer_norm.weight",
            "distilbert.embeddings.LayerNorm.bias",
            "classifier.weight",
            "classifier.bias",
        ],
        "embedding": "distilbert.embeddings.word_embeddings.weight",
    },
    "lm": {
        "base": "gpt2-tiny",
        "task": "causal-lm",
        "lr": 1e-3,
        "seed": 103,
        "lora": None,
        "params": [
            "transformer.h.1.attn.c_attn.weight",  # fused q|k|v Conv1D, stored [in, out]
            # Not c_attn.bias: its key third has a true gradient of 0 (a key
            # bias shifts all scores of a query equally; softmax ignores it),
            # so float32 noise (~1e-10) decides the sign of Adam's update
            # there and no other implementation could reproduce it. The MLP
            # bias has a real gradient.
            "transformer.h.1.mlp.c_fc.bias",
            "transformer.h.1.ln_2.weight",
            "transformer.ln_f.weight",
            "transformer.ln_f.bias",
            "transformer.wpe.weight",  # 64x32 position embeddings
        ],
        # lm_head is tied to wte: its rows get gradient from both uses.
        "embedding": "transformer.wte.weight",
    },
    # BERT's own objective: masked tokens (80% [MASK], 10% random, 10% kept, fixed here by the
    # fixture's generator) predicted through the MLM head whose decoder is tied to the word
    # embeddings, the loss on the chosen positions only.
    "mlm": {
        "base": "bert-mlm-f16",
        "task": "masked-lm",
        "lr": 1e-3,
        "seed": 106,
        "lora": None,
        "params": [
            "bert.encoder.layer.1.attention.self.query.weight",
            "bert.encoder.layer.1.output.LayerNorm.weight",
            "cls.predictions.transform.dense.weight",
            "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.bias",
        ],
        # The decoder is tied: its rows get gradient from the input embedding and the output.
        "embedding": "bert.embeddings.word_embeddings.weight",
    },
    "lora-seqcls": {
        "base": "bert-seqcls",
        "task": "sequence-classification",
        "lr": 5e-3,
        "seed": 104,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"],
                 "modules_to_save": ["classifier", "pooler"], "fan_in_fan_out": False},
        "params": [
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight",
            "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight",
            "bert.encoder.layer.0.attention.self.query.weight",  # frozen base weight: unchanged
            "bert.encoder.layer.0.attention.self.query.bias",  # frozen (LoRA trains no biases)
            "bert.pooler.dense.weight",  # modules_to_save copy (trained, decayed)
            "bert.pooler.dense.bias",  # modules_to_save copy (trained, no decay)
            "classifier.weight",
            "classifier.bias",
        ],
        "embedding": None,
    },
    "lora-lm": {
        "base": "gpt2-tiny",
        "task": "causal-lm",
        "lr": 5e-3,
        "seed": 105,
        "lora": {"r": 2, "alpha": 4, "dropout": 0.0, "target_modules": ["c_attn"], "modules_to_save": None,
                 "fan_in_fan_out": True},
        "params": [
            "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
            "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
            "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
            "transformer.h.0.attn.c_attn.weight",  # frozen base weight: unchanged
            "transformer.ln_f.weight",  # frozen
        ],
        "embedding": None,
    },
}


# --------------------------------------------------------------------------
# Naming: PEFT wraps modules; the JSON uses the names a Rust loader sees.
# --------------------------------------------------------------------------
def plain_name(peft_name: str) -> str:
    """Map a named_parameters() name to the fixture naming.

    LoRA matrices  -> PEFT's saved naming (adapter name `.default` dropped):
        base_model.model.X.lora_A.default.weight -> base_model.model.X.lora_A.weight
    wrapped base   -> plain model name:
        base_model.model.X.base_layer.weight -> X.weight
    modules_to_save -> the trained copy under the plain name:
        base_model.model.classifier.modules_to_save.default.weight -> classifier.weight
    (`original_module` copies are frozen duplicates; they map to None.)
    """
    if ".lora_" in peft_name:
        return peft_name.replace(".default.", ".")
    name = peft_name.removeprefix("base_model.model.")
    if ".original_module." in name:
        return None
    name = name.replace(".modules_to_save.default.", ".").replace(".base_layer.", ".")
    return name


def named_params(model, only=None) -> dict:
    """{fixture name: parameter} for a plain or PEFT-wrapped model.

    `only`: restrict to these named_parameters() names.
    """
    out = {}
    for n, p in model.named_parameters():
        if only is not None and n not in only:
            continue
        k = plain_name(n) if isinstance(model, peft.PeftModel) else n
        if k is not None:
            assert k not in out, k
            out[k] = p
    return out


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------
def make_batches(case: dict, model, gen: torch.Generator) -> list:
    """Three batches of 2 or 3 sequences of distinct lengths (4..12 tokens).

    Returns unpadded ids and labels exactly as written to the JSON.
    """
    task = case["task"]
    vocab = model.config.vocab_size
    encoder = task != "causal-lm"
    if encoder:
        tok = AutoTokenizer.from_pretrained(str(FIXTURES / case["base"]))
        assert (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id) == (PAD_ID, CLS_ID, SEP_ID)
        assert tok.mask_token_id == MASK_ID
        assert len(tok) == vocab
    n_labels = model.config.num_labels

    def randint(lo, hi, n=()):
        return torch.randint(lo, hi, n, generator=gen).tolist()

    batches = []
    for b in range(TOTAL_STEPS):
        n_seq = 2 + b % 2  # 2, 3, 2 sequences
        lengths = (torch.randperm(9, generator=gen)[:n_seq] + 4).tolist()  # distinct, in 4..12
        ids, labels = [], []
        for n in lengths:
            if encoder:
                # [CLS] w... [SEP]; content ids avoid the specials (0..4) and the last id.
                seq = [CLS_ID] + randint(FIRST_FREE_ID, vocab - 1, (n - 2,)) + [SEP_ID]
            else:
                seq = randint(1, vocab, (n,))  # 0 is the pad/eot id
            ids.append(seq)
            if task == "token-classification":
                lab = randint(0, n_labels, (n,))
                lab[0] = lab[-1] = -100  # [CLS] / [SEP] carry no label
                # A non-first sub-token of a word is ignored too (label_all_tokens=False).
                lab[randint(1, n - 1)] = -100
                labels.append(lab)
            elif task == "causal-lm":
                labels.append(list(seq))  # HF shifts internally
            elif task == "masked-lm":
                # DataCollatorForLanguageModeling's recipe with the draws fixed here: every
                # content token chosen with p = 0.3 (at least one per sequence), then 80% mask,
                # 10% a random id, 10% kept.
                lab = [-100] * n
                picks = [i for i in range(1, n - 1) if torch.rand((), generator=gen) < 0.3]
                for i in picks or [randint(1, n - 1)]:
                    lab[i] = seq[i]
                    r = float(torch.rand((), generator=gen))
                    if r < 0.8:
                        seq[i] = MASK_ID
                    elif r < 0.9:
                        seq[i] = randint(FIRST_FREE_ID, vocab - 1)
                labels.append(lab)
        if task == "sequence-classification":
            labels = randint(0, n_labels, (n_seq,))
        batches.append({"input_ids": ids, "labels": labels})
    return batches


def to_tensors(batch: dict, task: str) -> dict:
    """Right-pad to the longest sequence; padding is masked and label -100."""
    width = max(len(s) for s in batch["input_ids"])

    def pad(seqs, value):
        return torch.tensor([s + [value] * (width - len(s)) for s in seqs])

    inputs = {
        "input_ids": pad(batch["input_ids"], PAD_ID),
        "attention_mask": pad([[1] * len(s) for s in batch["input_ids"]], 0),
    }
    if task == "sequence-classification":
        inputs["labels"] = torch.tensor(batch["labels"])
    else:
        inputs["labels"] = pad(batch["labels"], -100)
    return inputs


# --------------------------------------------------------------------------
# Model setup
# --------------------------------------------------------------------------
AUTO = {
    "sequence-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "causal-lm": AutoModelForCausalLM,
    "masked-lm": AutoModelForMaskedLM,
}


def load_model(case: dict, gen: torch.Generator):
    model = AUTO[case["task"]].from_pretrained(str(FIXTURES / case["base"]), dtype=torch.float32)
    if case["lora"] is None:
        return model.eval()
    lora = case["lora"]
    cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS if case["task"] == "sequence-classification" else TaskType.CAUSAL_LM,
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        # Copies: PEFT extends modules_to_save in place (adds its task
        # defaults "classifier", "score"), which would leak into our settings.
        target_modules=list(lora["target_modules"]),
        modules_to_save=list(lora["modules_to_save"]) if lora["modules_to_save"] else None,
        fan_in_fan_out=lora["fan_in_fan_out"],
    )
    # lora_A is kaiming-initialised from torch's global RNG.
    torch.manual_seed(case["seed"])
    model = get_peft_model(model, cfg)
    with torch.no_grad():
        # PEFT starts lora_B at zero, so BA = 0 and dL/dA = 0 on the first
        # step: A's gradient and the A/B interplay would go untested.
        for n, p in model.named_parameters():
            if ".lora_B." in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return model.eval()


def save_init_adapter(model, case_name: str, base: str) -> None:
    """The starting adapter for the Rust test (adapter_config + safetensors)."""
    d = OUT / f"{case_name}-init"
    if d.exists():
        shutil.rmtree(d)
    model.save_pretrained(str(d))
    (d / "README.md").unlink(missing_ok=True)  # PEFT's model-card stub
    # The config stores the absolute path we loaded from; keep it repo-relative
    # so the file is the same on every machine.
    cfg_path = d / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = f"model/tests/fixtures/{base}"
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def param_groups(model):
    """Exactly Trainer.create_optimizer's two groups (trainable params only)."""
    # get_decay_parameter_names does not use `self`; calling it unbound keeps
    # the very same rule (LayerNorm modules, and names matching bias/norm).
    decay = set(Trainer.get_decay_parameter_names(None, model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if n in decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ], decay


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def build_case(case_name: str, double: bool = False) -> dict:
    """Train one case and return its JSON content.

    double=True repeats the identical run in float64 (same inputs, same start
    weights) for check_conditioning; it writes nothing.
    """
    case = CASES[case_name]
    gen = torch.Generator().manual_seed(case["seed"])
    model = load_model(case, gen)
    if double:
        model.double()
    elif case["lora"] is not None:
        save_init_adapter(model, case_name, case["base"])

    batches = make_batches(case, model, gen)
    params = named_params(model)
    groups, decay = param_groups(model)
    trainable = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=BETAS, eps=EPS)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=WARMUP_STEPS, num_training_steps=TOTAL_STEPS)

    recorded = case["params"]
    missing = [n for n in recorded if n not in params]
    assert not missing, (case_name, missing, list(params))
    emb_name = case["embedding"]
    emb_rows = None
    if emb_name is not None:
        first = batches[0]["input_ids"][0]
        step0 = {t for s in batches[0]["input_ids"] for t in s}
        used = {t for b in batches for s in b["input_ids"] for t in s}
        later = sorted(used - step0)
        unused = [t for t in range(FIRST_FREE_ID, model.config.vocab_size) if t not in used]
        # A token of the first batch (gradient at step 0), one first seen in a
        # later batch (zero moments until then) and one never seen (BERT: only
        # weight decay moves it; GPT-2: the tied lm_head still gives it gradient).
        emb_rows = [first[1], later[0], unused[0]]

    # Decay group membership under fixture names (trainable params only).
    decayed = {n for n, p in named_params(model, only=decay).items() if p.requires_grad}
    initial = {n: params[n].detach().clone() for n in recorded}

    losses, lrs, norms, grads0 = [], [], [], {}
    for step, batch in enumerate(batches):
        inputs = to_tensors(batch, case["task"])
        if case["base"].startswith("bert"):
            inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
        lrs.append(opt.param_groups[0]["lr"])  # the lr this step will use
        out = model(**inputs)
        out.loss.backward()
        losses.append(out.loss.item())
        if step == 0:
            # Raw gradients of the first backward, before clipping.
            grads0 = {n: params[n].grad.detach().clone() for n in recorded if params[n].grad is not None}
            emb_grad0 = params[emb_name].grad[emb_rows].clone() if emb_name else None
        norms.append(torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM).item())
        opt.step()
        sched.step()
        opt.zero_grad()

    # Sanity checks of what the fixture claims to show.
    for n in recorded:
        changed = not torch.equal(initial[n], params[n].detach())
        assert changed == params[n].requires_grad, (case_name, n, "changed" if changed else "unchanged")
    assert lrs == [0.0, case["lr"], case["lr"] / 2], lrs

    exp = {
        "base": case["base"],
        "task": case["task"],
        "settings": {
            "learning_rate": case["lr"],
            "weight_decay": WEIGHT_DECAY,
            "warmup_steps": WARMUP_STEPS,
            "total_steps": TOTAL_STEPS,
            "schedule": "linear",
            "max_grad_norm": MAX_GRAD_NORM,
            "lora": case["lora"],
        },
        "batches": batches,
        "losses": [f32(x) for x in losses],
        "lrs": lrs,
        "grad_norms": [f32(x) for x in norms],
        # recorded trainable params -> in the weight-decay group? (frozen ones are absent)
        "decayed": {n: n in decayed for n in recorded if params[n].requires_grad},
        "grads_step0": {n: floats(g.flatten()) for n, g in grads0.items()},
        "weights_after": {n: floats(params[n].detach().flatten()) for n in recorded},
        "shapes": {n: list(params[n].shape) for n in recorded},
    }
    if emb_name is not None:
        exp["embedding_rows"] = {
            "name": emb_name,
            "shape": list(params[emb_name].shape),
            "rows": emb_rows,
            "grads_step0": floats(emb_grad0),
            "weights_after": floats(params[emb_name].detach()[emb_rows]),
        }
    if case_name == "lora-seqcls":
        # Rust merges its trained adapter into the base weights; compare the
        # merged model's output on the first sequence of the first batch.
        merged = model.merge_and_unload().eval()
        with torch.no_grad():
            ids = torch.tensor([batches[0]["input_ids"][0]])
            logits = merged(input_ids=ids, token_type_ids=torch.zeros_like(ids)).logits[0]
        exp["merged_logits"] = floats(logits)
    exp["generator"] = GENERATOR

    if double:
        return exp
    print(f"  {case_name}: losses {[round(x, 5) for x in losses]}  grad norms {[round(x, 4) for x in norms]}"
          f"  (clipped: {[x > MAX_GRAD_NORM for x in norms]})  trainable tensors {len(trainable)}")
    return exp


def check_conditioning(case_name: str, exp: dict) -> None:
    """Make sure the recorded numbers are reproducible by another implementation.

    Compare the float32 record with the same run in float64. Another float32
    implementation (Rust/burn) differs from PyTorch by rounding noise of the
    same size, so anything that moves a lot here would make the Rust test
    flaky. The classic culprit is AdamW's update lr * m / (sqrt(v) + eps),
    which is ~lr in size whatever the gradient's magnitude: an element whose
    true gradient is 0 gets a random +-lr step from noise.
    Bounds: weights within 1% of the learning rate, gradients within 1e-4 of
    their tensor's largest entry, losses / norms / logits within 1e-5 relative.
    """
    ref = build_case(case_name, double=True)
    lr = CASES[case_name]["lr"]
    worst = {}

    def cmp(what, a, b, tol):
        a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        err = float((a - b).abs().max()) / tol
        worst[what] = max(worst.get(what, 0.0), err)
        assert err <= 1.0, f"{case_name}: {what} differs from float64 by {err:.1f}x the allowed {tol:.1e}"

    def rel(x):
        return 1e-5 * max(1.0, float(torch.tensor(x).abs().max()))

    cmp("losses", exp["losses"], ref["losses"], rel(ref["losses"]))
    cmp("grad_norms", exp["grad_norms"], ref["grad_norms"], rel(ref["grad_norms"]))
    for n, g in ref["grads_step0"].items():
        cmp(f"grads_step0 {n}", exp["grads_step0"][n], g, 1e-4 * float(torch.tensor(g).abs().max()))
    for n, w in ref["weights_after"].items():
        cmp(f"weights_after {n}", exp["weights_after"][n], w, 1e-2 * lr)
    if "embedding_rows" in ref:
        cmp("embedding_rows", exp["embedding_rows"]["weights_after"], ref["embedding_rows"]["weights_after"], 1e-2 * lr)
    if "merged_logits" in ref:
        cmp("merged_logits", exp["merged_logits"], ref["merged_logits"], rel(ref["merged_logits"]))
    what, err = max(worst.items(), key=lambda kv: kv[1])
    print(f"    float64 re-run agrees; tightest: {what} at {err:.3f} of its bound")


def main(argv):
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for n in names:
        print(f"building train/{n}")
        exp = build_case(n)
        check_conditioning(n, exp)
        (OUT / f"{n}.json").write_text(dumps(exp) + "\n", encoding="utf-8")
    print(f"done: {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
