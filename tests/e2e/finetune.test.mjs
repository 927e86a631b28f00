// Fine-tuning in the tab: the loss falls, the held-out metric appears, Stop works, the result is
// used on another page and downloaded as files.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { setup, pageTest, SLOW } from "./duet.mjs";

let t;
const test = pageTest(() => t);
before(async () => {
  t = await setup({ gpu: true });
  await t.duet.open("fine-tune");
});
after(async () => {
  if (process.env.DUET_E2E_LOGS) console.log(t.logs.join("\n"));
  await t?.close();
});

// A toy task the tiny fixture BERT can learn in a few steps (words from its 500-token vocabulary).
function toyData(n) {
  const pos = ["paris", "london", "city", "river", "world"];
  const neg = ["dog", "rain", "week", "hours", "agency"];
  const rows = [];
  for (let i = 0; i < n; i++) {
    const p = i % 2 === 0;
    const w = (p ? pos : neg)[i % 5];
    rows.push(`this is ${w} , really ${w}\t${p ? "pos" : "neg"}`);
  }
  return rows.join("\n");
}

async function losses(page) {
  const caption = await page.locator("figure.chart figcaption").textContent();
  const m = caption.match(/Loss: ([\d.]+) at step (\d+) → ([\d.]+) at step (\d+)/);
  return m && { first: Number(m[1]), last: Number(m[3]), steps: Number(m[4]) };
}

// Waits until the run ends (finished, stopped early, stopped by hand, or failed) and returns what
// the page says: a run that ends another way than a test expects fails then, with its reason.
async function ended(page, timeout = SLOW * 2) {
  const end = page
    .getByRole("status")
    .filter({ hasText: /Finished after|Stopped (early )?after/ })
    .or(page.getByRole("alert"));
  await end.first().waitFor({ timeout });
  return end.first().textContent();
}

// Stops a new run once it has taken a step (a new run shows no step count until it starts), and
// waits until it has stopped.
async function stopAfterAStep(page) {
  const step = page.getByLabel("Training step").filter({ hasText: /step [1-9]\d* \// });
  const alert = page.getByRole("alert");
  await step.or(alert).first().waitFor({ timeout: SLOW });
  if (await alert.count()) assert.fail(`the run failed: ${await alert.first().textContent()}`);
  await page.getByRole("button", { name: "Stop training" }).click();
  assert.match(await ended(page, SLOW), /^Stopped after/);
}

test("a short fine-tune: the loss falls and accuracy appears", { timeout: SLOW * 2 }, async () => {
  const page = t.duet.section("Fine-tune");
  await page.getByLabel("Task").selectOption("classify");
  await page.getByLabel("Base model").fill(`${t.hostUrl}/models/bert-seqcls/`);
  await page.getByLabel("Training data").fill(toyData(40));
  await page.getByLabel("What to train").selectOption("all");
  await page.getByLabel("Epochs").fill("6");
  await page.getByLabel("Batch size").fill("8");
  await page.getByLabel("Learning rate").fill("0.003");
  await page.getByLabel("Held-out fraction").fill("0.2");
  await page.getByRole("button", { name: "Start training" }).click();
  assert.match(await ended(page), /^Finished after/);
  const l = await losses(page);
  assert.ok(l && l.steps >= 10, JSON.stringify(l));
  assert.ok(l.last < l.first, `loss fell: ${JSON.stringify(l)}`);
  const metrics = await page.getByRole("table", { name: "Evaluation metrics" }).textContent();
  assert.match(metrics, /accuracy/);
  assert.match(await page.getByLabel("Training step").textContent(), new RegExp(`step ${l.steps} / ${l.steps}`));
});

test("the result downloads as a checkpoint that parses", { timeout: SLOW }, async () => {
  const page = t.duet.section("Fine-tune");
  const got = [];
  const listener = (d) => got.push(d);
  t.page.on("download", listener);
  await page.getByRole("button", { name: "Download full checkpoint" }).click();
  await page.getByRole("list", { name: "Downloads" }).getByText("model.safetensors").waitFor({ timeout: SLOW });
  await t.page.waitForTimeout(1000);
  t.page.off("download", listener);
  const names = got.map((d) => d.suggestedFilename()).sort();
  assert.ok(names.includes("model.safetensors") && names.includes("config.json"), names.join(","));
  const st = got.find((d) => d.suggestedFilename() === "model.safetensors");
  const bytes = fs.readFileSync(await st.path());
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
  assert.ok(Object.keys(header).some((k) => k.includes("classifier")), Object.keys(header).join(","));
  const config = JSON.parse(fs.readFileSync(await got.find((d) => d.suggestedFilename() === "config.json").path()));
  assert.deepEqual(Object.values(config.id2label).sort(), ["neg", "pos"]);
});

test("the fine-tuned model is used on the Classify page", { timeout: SLOW }, async () => {
  const page = t.duet.section("Fine-tune");
  await page.getByRole("button", { name: "Use it on the classify page" }).click();
  await page.getByRole("status").filter({ hasText: "now on the classify page" }).waitFor({ timeout: SLOW });
  const cls = await t.duet.tab("Classify");
  await t.duet.loaded(cls, "fine-tuned");
  await cls.getByLabel("Text to classify").fill("this is london , really london");
  await cls.getByRole("button", { name: "Classify" }).click();
  const bars = cls.getByRole("list", { name: "Label scores" }).getByRole("listitem");
  await bars.first().waitFor({ timeout: SLOW });
  assert.equal(await bars.first().getAttribute("data-label"), "pos");
});

test("Stop ends a LoRA run early; the adapter downloads", { timeout: SLOW * 2 }, async () => {
  const page = await t.duet.tab("Fine-tune");
  await page.getByLabel("What to train").selectOption("lora");
  await page.getByLabel("Epochs").fill("200");
  await page.getByRole("button", { name: "Start training" }).click();
  await stopAfterAStep(page);
  const l = await losses(page);
  assert.ok(l.steps < 1000, JSON.stringify(l));
  const got = [];
  const listener = (d) => got.push(d);
  t.page.on("download", listener);
  await page.getByRole("button", { name: "Download LoRA adapter" }).click();
  await page.getByRole("list", { name: "Downloads" }).getByText("adapter_model.safetensors").waitFor({ timeout: SLOW });
  await t.page.waitForTimeout(1000);
  t.page.off("download", listener);
  const cfg = got.find((d) => d.suggestedFilename() === "adapter_config.json");
  assert.ok(cfg, got.map((d) => d.suggestedFilename()).join(","));
  const adapter = JSON.parse(fs.readFileSync(await cfg.path()));
  assert.equal(adapter.peft_type, "LORA");
  assert.equal(adapter.r, 8);
});

test("Continue takes a stopped run to its end from where it stopped; other settings are refused", { timeout: SLOW * 3 }, async () => {
  const page = await t.duet.tab("Fine-tune");
  const cont = page.getByRole("button", { name: "Continue training" });
  // LoRA: the stopped run keeps the adapters and the head, not the frozen base, which Continue
  // takes from the base model again.
  await page.getByLabel("What to train").selectOption("lora");
  await page.getByLabel("Max steps (0: no limit)").fill("40");
  const stepOfTheLastRun = await page.getByLabel("Training step").textContent();
  assert.match(stepOfTheLastRun, /step [1-9]\d* \//);
  await page.getByRole("button", { name: "Start training" }).click();
  // A new run shows no step count until it has one of its own: the last run's would read as its.
  assert.notEqual(await page.getByLabel("Training step").textContent(), stepOfTheLastRun);
  // A new run discards the stopped one: nothing to continue while it runs.
  assert.equal(await cont.isDisabled(), true);
  await stopAfterAStep(page);
  const stoppedAt = await losses(page);
  assert.ok(stoppedAt.steps < 40, JSON.stringify(stoppedAt));
  assert.match(await page.getByRole("status").first().textContent(), new RegExp(`Continue goes on from step ${stoppedAt.steps}`));

  // Another learning rate would be another run: refused by name, and the stopped run is kept.
  await page.getByLabel("Learning rate").fill("0.001");
  await cont.click();
  await page.locator(".error").filter({ hasText: "learning_rate" }).waitFor({ timeout: SLOW });
  await page.getByLabel("Learning rate").fill("0.003");
  // So would another base model: the stopped run keeps its base's content hash.
  const base = page.getByLabel("Base model");
  const stoppedBase = await base.inputValue();
  await base.fill(`${t.hostUrl}/models/bert-mlm-f16/`);
  await cont.click();
  await page
    .locator(".error")
    .filter({ hasText: "Continue goes on with the stopped run's base model: put it back, or start afresh with this one" })
    .waitFor({ timeout: SLOW });
  await base.fill(stoppedBase);

  await cont.click();
  assert.match(await ended(page), /^Finished after 40 steps/);
  const done = await losses(page);
  // One curve from step 1 to the end: the stopped run's points kept, the rest appended.
  assert.equal(done.steps, 40);
  assert.equal(done.first, stoppedAt.first);
  assert.match(await page.getByLabel("Training step").textContent(), /step 40 \/ 40/);
  assert.equal(await cont.isDisabled(), true, "a finished run has nothing to continue");
});

test("a masked-LM fine-tune: BERT gets an MLM head, learns to fill blanks, and the Fill-mask page uses it", { timeout: SLOW * 2 }, async () => {
  const page = await t.duet.tab("Fine-tune");
  await page.getByLabel("Task").selectOption("mlm");
  assert.match(await page.locator("p.hint").textContent(), /fill in its words/);
  // bert-seqcls classifies: it has no MLM head, so training makes one.
  await page.getByLabel("Base model").fill(`${t.hostUrl}/models/bert-seqcls/`);
  const text = toyData(60).split("\n").map((l) => l.split("\t")[0]).join("\n");
  await page.getByLabel("Training data").fill(text);
  await page.getByLabel("What to train").selectOption("all");
  await page.getByLabel("Epochs").fill("8");
  await page.getByLabel("Max steps (0: no limit)").fill("0");
  await page.getByLabel("Batch size").fill("4");
  await page.getByLabel("Learning rate").fill("0.003");
  await page.getByLabel("Held-out fraction").fill("0.2");
  await page.getByRole("button", { name: "Start training" }).click();
  assert.match(await ended(page), /^Finished after/);
  const l = await losses(page);
  assert.ok(l && l.steps >= 8 && l.last < l.first, JSON.stringify(l));
  const metrics = await page.getByRole("table", { name: "Evaluation metrics" }).textContent();
  assert.match(metrics, /top-5 accuracy/);
  assert.match(metrics, /perplexity/);
  await page.getByRole("button", { name: "Use it on the fill-mask page" }).click();
  await page.getByRole("status").filter({ hasText: "now on the fill-mask page" }).waitFor({ timeout: SLOW });
  const fill = await t.duet.tab("Fill-mask");
  assert.match(await t.duet.loaded(fill, "fine-tuned"), /BertForMaskedLM/);
  await fill.getByLabel("Text with a mask").fill("this is [MASK] , really london");
  await fill.getByRole("button", { name: "Fill the mask" }).click();
  const fills = fill.getByRole("table", { name: "Fills" }).getByRole("meter");
  await fills.first().waitFor({ timeout: SLOW });
  assert.equal(await fills.count(), 5);
});

// Words in a seeded random order: nothing to learn beyond their frequencies, so a model that
// memorises the training part soon does worse on the held-out part.
function randomWords(n) {
  const words = ["the", "king", "river", "city", "stone", "night", "sweet", "lord", "fair", "death"];
  let x = 12345;
  const out = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(words[x % words.length]);
  }
  return out.join(" ");
}

// The evaluation table's held-out losses in order, each with its step and whether it is marked
// as the kept one.
async function heldOutLosses(page) {
  return page.getByRole("table", { name: "Evaluation metrics" }).evaluate((table) =>
    Array.from(table.querySelectorAll("tbody tr"))
      .map((tr) => ({ cells: Array.from(tr.cells).map((c) => c.textContent), best: tr.classList.contains("best") }))
      .filter((r) => r.cells[1] === "loss")
      .map((r) => ({ step: Number(r.cells[0]), loss: Number(r.cells[2]), best: r.best })),
  );
}

test("a language model that overfits stops early and keeps its best evaluation's weights", { timeout: SLOW * 3 }, async () => {
  const page = await t.duet.tab("Fine-tune");
  const recut = page.getByLabel("Re-cut the text each epoch");
  assert.equal(await recut.isDisabled(), true, "re-cut blocks are a language model's");
  await page.getByLabel("Task").selectOption("lm");
  assert.equal(await recut.isDisabled(), false);
  await page.getByLabel("Base model").fill(`${t.hostUrl}/models/gpt2-tiny/`);
  await page.getByLabel("Training data").fill(randomWords(700));
  await page.getByLabel("What to train").selectOption("all");
  await page.getByLabel("Epochs").fill("40");
  await page.getByLabel("Max steps (0: no limit)").fill("0");
  await page.getByLabel("Batch size").fill("4");
  await page.getByLabel("Learning rate").fill("0.01");
  await page.getByLabel("Held-out fraction").fill("0.2");
  await page.getByLabel("Keep the best").check();
  await page.getByLabel("Stop after evaluations without improvement (0: never)").fill("2");
  await recut.check();
  await page.getByRole("button", { name: "Start training" }).click();
  const line = await ended(page, SLOW * 3);
  assert.match(line, /^Stopped early after/);
  const [, stoppedAt] = line.match(/Stopped early after (\d+) steps/);
  const evals = await heldOutLosses(page);
  // The table is what the run saw: its lowest loss is the kept step (the first of equals), and
  // the two evaluations after it, neither lower, are where it stopped.
  const lowest = evals.reduce((a, b) => (b.loss < a.loss ? b : a));
  const at = evals.indexOf(lowest);
  assert.equal(evals.length, at + 3, JSON.stringify(evals));
  assert.equal(evals[evals.length - 1].step, Number(stoppedAt), JSON.stringify(evals));
  assert.match(line, new RegExp(`Kept the weights of step ${lowest.step}, the lowest held-out loss`));
  assert.deepEqual(evals.filter((e) => e.best).map((e) => e.step), [lowest.step]);
  const [, step, total] = (await page.getByLabel("Training step").textContent()).match(/step (\d+) \/ (\d+)/);
  assert.equal(Number(step), Number(stoppedAt));
  assert.ok(Number(step) < Number(total), `stopped before its ${total} steps`);
  await page.getByLabel("Keep the best").uncheck();
  await page.getByLabel("Stop after evaluations without improvement (0: never)").fill("0");
  await recut.uncheck();
});

test("bad training data is a clear error", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Fine-tune");
  await page.getByLabel("Training data").fill("");
  await page.getByRole("button", { name: "Start training" }).click();
  assert.match(await t.duet.error(page), /no examples/);
  // Settings that cannot run are refused, not quietly changed.
  await page.getByLabel("Task").selectOption("classify");
  await page.getByLabel("What to train").selectOption("lora");
  await page.getByLabel("Training data").fill(toyData(10));
  for (const [label, value, message] of [
    ["Epochs", 0, /epochs must be at least 1/],
    ["Batch size", 0, /a batch of 0 examples: use 1 to 256/],
    ["Held-out fraction", 0.9, /a held-out fraction of 0\.9: use 0 to 0\.5/],
    ["LoRA rank", 0, /the LoRA rank must be at least 1/],
  ]) {
    const field = page.getByLabel(label, { exact: true });
    const before = await field.inputValue();
    await field.fill(String(value));
    await page.getByRole("button", { name: "Start training" }).click();
    await page.getByRole("alert").filter({ hasText: message }).waitFor({ timeout: SLOW });
    await field.fill(before);
  }
});
