// Pretraining side by side in the tab: a fresh GPT and a fresh BERT learn one text at the same
// time, two curves on one chart, samples from both, Stop and Continue, and either downloads.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { setup, pageTest, SLOW } from "./duet.mjs";

let t;
const test = pageTest(() => t);
let page;
before(async () => {
  t = await setup();
  await t.duet.open("pretrain");
  page = t.duet.section("Pretrain");
});
after(async () => {
  if (process.env.DUET_E2E_LOGS) console.log(t.logs.join("\n"));
  await t?.close();
});

async function settings(values) {
  for (const [label, value] of Object.entries(values)) await page.getByLabel(label, { exact: true }).fill(String(value));
}

/** Points drawn on each curve, and the first and last loss the legend states. */
async function curves() {
  const out = {};
  for (const [name, label] of [["gpt", "GPT loss"], ["bert", "BERT loss"]]) {
    const points = (await page.getByLabel(label, { exact: true }).getAttribute("points")).trim();
    const legend = await page.getByRole("list", { name: "Legend" }).locator(`li.${name}`).textContent();
    const m = legend.match(/loss ([\d.]+) → ([\d.]+)/);
    out[name] = { points: points ? points.split(" ").length : 0, first: m && Number(m[1]), last: m && Number(m[2]) };
  }
  return out;
}

async function step() {
  const m = (await page.getByLabel("Pretraining step").textContent()).match(/step (\d+) \/ (\d+)/);
  return m ? { step: Number(m[1]), total: Number(m[2]) } : null;
}

test("bad input is a clear error: no text, a sentence without [MASK]", { timeout: SLOW }, async () => {
  await page.getByRole("button", { name: "Start both" }).click();
  assert.match(await t.duet.error(page), /there is no text/);
  await page.getByRole("button", { name: /Use a sample text/ }).click();
  // Settings that cannot run are refused, not quietly changed.
  for (const [label, value, message] of [
    ["Batch size", 0, /a batch of 0 blocks: use 1 to 256/],
    ["Steps", 0, /steps must be at least 1/],
    ["Sample every (steps)", 0, /"sample every" must be at least 1 step/],
  ]) {
    const before = await page.getByLabel(label, { exact: true }).inputValue();
    await settings({ [label]: value });
    await page.getByRole("button", { name: "Start both" }).click();
    await page.getByRole("alert").filter({ hasText: message }).waitFor({ timeout: SLOW });
    await settings({ [label]: before });
  }
  await page.getByLabel("BERT's sentence").fill("no blank in this one");
  await page.getByRole("button", { name: "Start both" }).click();
  await page.getByRole("alert").filter({ hasText: "exactly one [MASK]" }).waitFor({ timeout: SLOW });
  await page.getByLabel("BERT's sentence").fill("");
});

test("both models train side by side: two falling curves and samples from both", { timeout: SLOW * 2 }, async () => {
  await settings({ Layers: 1, Heads: 2, Width: 32, "Block size (tokens)": 32, "Vocabulary size": 300,
    Steps: 40, "Batch size": 8, "Learning rate": 0.004, "Sample every (steps)": 20 });
  await page.getByRole("button", { name: "Start both" }).click();
  await page.getByRole("status").filter({ hasText: "Finished after 40 steps" }).waitFor({ timeout: SLOW * 2 });
  assert.deepEqual(await step(), { step: 40, total: 40 });
  const c = await curves();
  assert.equal(c.gpt.points, 40, JSON.stringify(c));
  assert.equal(c.bert.points, 40, JSON.stringify(c));
  assert.ok(c.gpt.last < c.gpt.first, `GPT's loss fell: ${JSON.stringify(c)}`);
  assert.ok(c.bert.last < c.bert.first, `BERT's loss fell: ${JSON.stringify(c)}`);
  // The probe was chosen from the text and shown in the inputs.
  const prompt = await page.getByLabel("GPT's prompt").inputValue();
  const masked = await page.getByLabel("BERT's sentence").inputValue();
  assert.ok(prompt.length > 0 && masked.startsWith(prompt), `${prompt} | ${masked}`);
  assert.equal(masked.split("[MASK]").length, 2, masked);
  // Samples before training and every 20 steps, newest first.
  const items = page.getByRole("list", { name: "Samples" }).getByRole("listitem");
  const steps = [];
  for (const li of await items.all()) steps.push(Number(await li.getAttribute("data-step")));
  assert.deepEqual(steps, [40, 20, 0]);
  for (const li of await items.all()) {
    const [gpt, shown] = await li.locator(".gpt-sample").evaluate((p) => [p.textContent, p.innerText]);
    // Shown as written: line breaks and spaces are not folded into one space.
    assert.equal(shown, gpt);
    const bert = await li.locator(".bert-fill").textContent();
    assert.ok(gpt.startsWith(`GPT: ${prompt}`), gpt);
    // The sentence with BERT's best fill in brackets, then its three fills with scores.
    const [sentence, fills] = bert.replace(/^BERT: /, "").split(" — ");
    const best = fills.match(/^(.+?) \(/)[1];
    assert.equal(sentence, masked.replace("[MASK]", `[${best}]`), bert);
    assert.match(fills, /^.+ \([01]\.\d\d\)( · .+ \([01]\.\d\d\)){2}$/, bert);
  }
});

test("Continue goes on from the last step, and Stop stops", { timeout: SLOW * 2 }, async () => {
  await settings({ Steps: 5000 });
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("status").filter({ hasText: "steps 40 to 5040" }).waitFor({ timeout: SLOW });
  for (let i = 0; i < 600 && ((await step())?.step ?? 0) < 50; i++) await t.page.waitForTimeout(200);
  await page.getByRole("button", { name: "Stop" }).click();
  const stopped = page.getByRole("status").filter({ hasText: /Stopped after \d+ steps/ });
  await stopped.waitFor({ timeout: SLOW });
  const n = Number((await stopped.textContent()).match(/after (\d+) steps/)[1]);
  assert.ok(n >= 50 && n < 5040, `stopped at ${n}`);
  const c = await curves();
  assert.equal(c.gpt.points, n, "the curve went on from step 40, not from 0");
  assert.equal(c.bert.points, n);
  const first = await page.getByRole("list", { name: "Samples" }).getByRole("listitem").first().getAttribute("data-step");
  assert.equal(Number(first), n, "a sample where it stopped");
  assert.equal(await page.getByRole("button", { name: "Continue" }).isEnabled(), true);
});

test("a bad sentence on Continue is an error that keeps the models", { timeout: SLOW }, async () => {
  const masked = await page.getByLabel("BERT's sentence").inputValue();
  await page.getByLabel("BERT's sentence").fill("no blank here");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("alert").filter({ hasText: "exactly one [MASK]" }).waitFor({ timeout: SLOW });
  await page.getByLabel("BERT's sentence").fill(masked);
  // The downloads below need the models: the failed Continue must have left them in the engine.
});

test("either model downloads as a checkpoint", { timeout: SLOW }, async () => {
  for (const [button, type, key] of [["Download GPT", "gpt2", "transformer.h.0.attn.c_attn.weight"],
    ["Download BERT", "bert", "cls.predictions.transform.dense.weight"]]) {
    const got = [];
    const listener = (d) => got.push(d);
    t.page.on("download", listener);
    await page.getByRole("button", { name: button }).click();
    await page.getByRole("list", { name: "Downloads" }).getByText("tokenizer.json").waitFor({ timeout: SLOW });
    await t.page.waitForTimeout(1000);
    t.page.off("download", listener);
    const names = got.map((d) => d.suggestedFilename()).sort();
    assert.deepEqual(names.filter((n) => ["config.json", "model.safetensors", "tokenizer.json"].includes(n)),
      ["config.json", "model.safetensors", "tokenizer.json"], names.join(","));
    const config = JSON.parse(fs.readFileSync(await got.find((d) => d.suggestedFilename() === "config.json").path()));
    assert.equal(config.model_type, type);
    const bytes = fs.readFileSync(await got.find((d) => d.suggestedFilename() === "model.safetensors").path());
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
    assert.ok(key in header, `${key} in ${Object.keys(header).join(",")}`);
  }
});

test("the address carries the settings, and a link opens the page with them", { timeout: SLOW }, async () => {
  await settings({ Layers: 3, Width: 48 });
  await t.page.waitForFunction(() => location.hash.startsWith("#pretrain?") && location.hash.includes("layers=3"));
  await t.page.goto(`${t.appUrl}/#pretrain?layers=4&heads=4&width=96&steps=77&lr=0.01`);
  await t.duet.waitReady();
  const fresh = t.duet.section("Pretrain");
  for (const [label, want] of [["Layers", "4"], ["Heads", "4"], ["Width", "96"], ["Steps", "77"], ["Learning rate", "0.01"]]) {
    assert.equal(await fresh.getByLabel(label, { exact: true }).inputValue(), want, label);
  }
});
