// The embedded defaults on every page on WebGPU (`?gpu=1`: CI's adapter is SwiftShader, which the
// app would otherwise leave for the CPU): generate (streaming, Stop), classify, entities, compare,
// inside (attention), and the engine's parity checks.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, pageTest, SLOW } from "./duet.mjs";

let t;
const test = pageTest(() => t);
before(async () => {
  t = await setup({ gpu: true });
  await t.duet.open("generate");
});
after(async () => {
  if (process.env.DUET_E2E_LOGS) console.log(t.logs.join("\n"));
  await t?.close();
});

test("the engine starts on WebGPU", async () => {
  assert.equal(await t.duet.backend(), "WebGPU", t.logs.join("\n"));
});

test("generate streams tokens and Stop stops", { timeout: SLOW * 2 }, async () => {
  const gen = t.duet.section("Generate");
  assert.match(await t.duet.loaded(gen, "gpt2-shakespeare"), /GPT2LMHeadModel/);
  await gen.getByLabel("Max new tokens").fill("200");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  const tokens = gen.getByRole("list", { name: "Generated tokens" }).getByRole("listitem");
  // Tokens arrive one by one while the run is still going (Stop is enabled).
  await t.page.waitForFunction(
    () => document.querySelectorAll('[aria-label="Generated tokens"] li').length >= 3,
    null,
    { timeout: SLOW },
  );
  assert.ok(await gen.getByRole("button", { name: "Stop" }).isEnabled(), "still running after 3 tokens");
  await gen.getByRole("button", { name: "Stop" }).click();
  await gen.getByRole("status").filter({ hasText: "Stopped after" }).waitFor({ timeout: SLOW });
  const n = await tokens.count();
  assert.ok(n >= 3 && n < 200, `stopped early with ${n} tokens`);
  const text = await gen.getByLabel("Generated text").textContent();
  assert.ok(text.startsWith("ROMEO:") && text.length > "ROMEO:".length, text);
  assert.match(await gen.getByLabel("Tokens per second").textContent(), /tokens\/s/);
  // Teaching views: the prompt as tokens, and bars of next-token probabilities.
  assert.ok((await gen.getByRole("list", { name: "Prompt tokens" }).getByRole("listitem").count()) >= 1);
  const bars = gen.getByLabel("Next-token probabilities").getByRole("meter");
  assert.equal(await bars.count(), 5);
});

test("greedy generation runs to its length", { timeout: SLOW }, async () => {
  const gen = t.duet.section("Generate");
  await gen.getByLabel("Sample").uncheck();
  await gen.getByLabel("Max new tokens").fill("8");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  await gen.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
  assert.equal(await gen.getByRole("list", { name: "Generated tokens" }).getByRole("listitem").count(), 8);
});

test("the sampler's stages of a step redraw as the sliders move, without asking the engine", { timeout: SLOW }, async () => {
  const gen = t.duet.section("Generate");
  const steps = gen.getByRole("list", { name: "Generated tokens" }).getByRole("button");
  await steps.nth(2).click();
  await gen.getByRole("button", { name: "Show the stages of step 3" }).click();
  const view = gen.getByLabel("Stages of the step");
  const stage = (name) => view.getByRole("region", { name: `Stage: ${name}` });
  await stage("Top-p").waitFor({ timeout: SLOW });
  assert.equal(await view.getByRole("region").count(), 5);
  const values = async (name) =>
    (await stage(name).getByRole("meter").evaluateAll((ms) => ms.map((m) => Number(m.getAttribute("aria-valuenow")))));
  // Greedy with no penalty picked the raw favourite: marked first in every stage.
  const token = (await steps.nth(2).textContent()).trim();
  assert.match(await stage("Raw softmax").locator("li.chosen .bar-label").textContent(), /✓/);
  assert.equal(await stage("Raw softmax").locator("li.bar-row").first().getAttribute("class"), "bar-row chosen", token);
  const raw = await values("Raw softmax");
  assert.equal(raw.length, 8);
  const posts = await t.duet.posts();
  const slide = (label, value) =>
    gen.getByLabel(`${label} slider`).evaluate((el, v) => {
      el.value = v;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    }, value);
  await slide("Top-k", "2");
  await t.page.waitForFunction(() => document.querySelectorAll('[aria-label="Stage: Top-k"] [role=meter]').length === 2);
  const topK = await values("Top-k");
  assert.ok(Math.abs(topK[0] + topK[1] - 1) < 1e-4, `top-k renormalises: ${topK}`);
  await slide("Temperature", "2");
  await t.page.waitForFunction(
    (top) => Number(document.querySelector('[aria-label="Stage: Temperature"] [role=meter]').getAttribute("aria-valuenow")) < top,
    raw[0],
  );
  assert.deepEqual(await values("Raw softmax"), raw, "the raw stage does not move");
  await slide("Top-p", "0.05");
  await t.page.waitForFunction(() => document.querySelectorAll('[aria-label="Stage: Top-p"] [role=meter]').length === 1);
  // The same settings the next generation uses.
  assert.equal(await gen.getByLabel("Top-k", { exact: true }).inputValue(), "2");
  assert.equal(await t.duet.posts(), posts, "moving the sliders asked the engine nothing");
  await slide("Top-k", "50");
  await slide("Temperature", "1");
  await slide("Top-p", "1");
});

test("strategies side by side: greedy, beam search, top-k and top-p fill together, each with its log-probability", { timeout: SLOW * 2 }, async () => {
  const gen = t.duet.section("Generate");
  await gen.getByLabel("Max new tokens").fill("12");
  // One beam is greedy, not beam search: refused, not quietly made two (the run below clears it).
  await gen.getByLabel("Beams").fill("1");
  await gen.getByRole("button", { name: "Compare strategies" }).click();
  await gen.getByRole("alert").filter({ hasText: "1 beams: use 2 to 16" }).waitFor({ timeout: SLOW });
  await gen.getByLabel("Beams").fill("4");
  const posts = await t.duet.posts();
  await gen.getByRole("button", { name: "Compare strategies" }).click();
  const column = (name) => gen.getByRole("region", { name: `Strategy: ${name}` });
  await column("top-p").waitFor({ timeout: SLOW * 2 });
  assert.equal(await t.duet.posts(), posts + 1, "one request for the four columns");
  assert.equal(await gen.getByRole("alert").count(), 0, "the refusal is gone once a run starts");
  const names = await gen.locator(".strategies section").evaluateAll((ss) => ss.map((s) => s.getAttribute("aria-label")));
  assert.deepEqual(names, ["Strategy: greedy", "Strategy: beam search", "Strategy: top-k", "Strategy: top-p"]);
  for (const name of ["greedy", "beam search", "top-k", "top-p"]) {
    const lp = Number(await column(name).locator(".log-prob").getAttribute("data-log-prob"));
    assert.ok(Number.isFinite(lp) && lp < 0, `${name}: log p ${lp}`);
    assert.ok((await column(name).locator(".continuation").textContent()).length > 0, name);
  }
  assert.match(await column("beam search").textContent(), /4 beams/);
  // The greedy column is what greedy generation on the page writes.
  const greedy = await column("greedy").locator(".output").textContent();
  assert.equal(await t.duet.generateGreedy(12), greedy);
});

test("an empty prompt is a clear error", { timeout: SLOW }, async () => {
  const gen = t.duet.section("Generate");
  await gen.getByLabel("Prompt", { exact: true }).fill("");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  assert.match(await t.duet.error(gen), /prompt is empty/);
  await gen.getByLabel("Prompt", { exact: true }).fill("ROMEO:");
  // Asked for no tokens: an error, as in transformers (it used to make one anyway).
  await gen.getByLabel("Max new tokens").fill("0");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  assert.match(await t.duet.error(gen), /max_new_tokens must be at least 1/);
  await gen.getByLabel("Max new tokens").fill("1");
  await gen.getByLabel("Sample").uncheck();
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  await gen.getByRole("status").filter({ hasText: /^Done/ }).waitFor({ timeout: SLOW });
  assert.equal(await gen.getByRole("status").filter({ hasText: /^Done/ }).textContent(), "Done: 1 token.");
});

test("no token is shown blank: a line break is ↵, a space ␣", { timeout: SLOW }, async () => {
  const gen = t.duet.section("Generate");
  await gen.getByLabel("Prompt", { exact: true }).fill("ROMEO:\nO Romeo");
  await gen.getByLabel("Sample").uncheck();
  await gen.getByLabel("Max new tokens").fill("12");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  await gen.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
  const prompt = await gen.getByRole("list", { name: "Prompt tokens" }).getByRole("listitem").allTextContents();
  assert.ok(prompt.includes("↵"), prompt.join("|"));
  assert.ok(prompt.some((p) => p.startsWith("␣")), prompt.join("|"));
  const generated = await gen.getByRole("list", { name: "Generated tokens" }).getByRole("button").allTextContents();
  for (const token of [...prompt, ...generated]) assert.match(token, /\S/, `a blank token among ${[...prompt, ...generated].join("|")}`);
  await gen.getByLabel("Prompt", { exact: true }).fill("ROMEO:");
});

test("classify shows a bar per label", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Classify");
  await t.duet.loaded(page, "minilm-sst2");
  await page.getByLabel("Text to classify").fill("A wonderful, moving film. I loved every minute.");
  await page.getByRole("button", { name: "Classify" }).click();
  const bars = page.getByRole("list", { name: "Label scores" }).getByRole("listitem");
  await bars.first().waitFor({ timeout: SLOW });
  assert.equal(await bars.count(), 2);
  assert.equal(await bars.first().getAttribute("data-label"), "positive");
});

test("classify rejects empty text", { timeout: SLOW }, async () => {
  const page = t.duet.section("Classify");
  await page.getByLabel("Text to classify").fill("   ");
  await page.getByRole("button", { name: "Classify" }).click();
  assert.match(await t.duet.error(page), /empty/);
});

test("entities are marked in pasted text", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Entities");
  await t.duet.loaded(page, "minilm-conll03");
  // Before the first run there is no empty box or table, only the text and the button.
  assert.equal(await page.getByLabel("Tagged text").count(), 0);
  assert.equal(await page.getByRole("table", { name: "Entities" }).count(), 0);
  const found = await t.duet.entities("Angela Merkel visited Paris with officials from Siemens.");
  assert.equal(found["Angela Merkel"], "PER", JSON.stringify(found));
  assert.equal(found["Paris"], "LOC", JSON.stringify(found));
  const marks = page.getByLabel("Tagged text").locator("mark");
  const rows = page.getByRole("table", { name: "Entities" }).locator("tbody tr");
  assert.equal(await rows.count(), await marks.count());
  assert.ok((await page.getByRole("list", { name: "Legend" }).getByRole("listitem").count()) >= 2);
  // Under them, every sub-token with its three most likely labels and the entity it joined.
  const tokens = page.getByRole("table", { name: "Tokens" });
  const n = await tokens.locator("tbody tr").count();
  assert.ok(n >= 9, `${n} tokens`);
  assert.equal(await tokens.getByRole("meter").count(), 3 * n);
  const joined = () => tokens.locator("tbody tr td.tok-entity").allTextContents();
  const simple = await joined();
  assert.equal(new Set(simple.filter((e) => e !== "—")).size, await rows.count(), simple.join(" "));
  // Aggregation "none" reports per-token B-/I- labels: re-merged from the same run, no new one.
  const posts = await t.duet.posts();
  await page.getByLabel("Aggregation strategy").selectOption("none");
  await page.getByRole("table", { name: "Entities" }).getByText("B-PER").first().waitFor({ timeout: SLOW });
  assert.equal(await t.duet.posts(), posts, "switching the strategy asked the engine nothing");
  const none = await joined();
  assert.notDeepEqual(none, simple);
  assert.equal(new Set(none.filter((e) => e !== "—")).size, await rows.count(), none.join(" "));
});

test("text over the model's limit is a clear error", { timeout: SLOW }, async () => {
  const page = t.duet.section("Classify");
  await t.duet.tab("Classify");
  await page.getByLabel("Text to classify").fill("word ".repeat(700));
  await page.getByRole("button", { name: "Classify" }).click();
  assert.match(await t.duet.error(page), /too long: \d+ tokens, the model accepts at most 512/);
});

test("compare runs GPT left to right and BERT on the whole sentence", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Compare");
  // Before a run, each side's heading names the model a run would use.
  const gptHeading = page.getByRole("heading", { name: /^GPT/ });
  const bertHeading = page.getByRole("heading", { name: /^BERT/ });
  const headings = async () => [await gptHeading.textContent(), await bertHeading.textContent()];
  await bertHeading.filter({ hasText: "minilm-conll03" }).waitFor({ timeout: SLOW });
  const before = await headings();
  assert.deepEqual(before, [
    "GPT (gpt2-shakespeare) — left to right",
    "BERT (minilm-sst2 · minilm-conll03) — whole sentence at once",
  ]);
  assert.equal(await page.getByLabel("BERT entities").count(), 0, "no empty entity box before a run");
  await page.getByRole("button", { name: "Compare", exact: true }).click();
  const gpt = page.getByRole("list", { name: "GPT token probabilities" }).getByRole("listitem");
  await gpt.first().waitFor({ timeout: SLOW });
  assert.ok((await gpt.count()) > 5);
  assert.match(await gpt.nth(0).getAttribute("title"), /nothing to its left/);
  assert.match(await gpt.nth(1).getAttribute("title"), /p = 0\.\d+/);
  assert.equal(await page.getByRole("list", { name: "BERT sentiment" }).getByRole("listitem").count(), 2);
  assert.ok((await page.getByLabel("BERT entities").locator("mark").count()) >= 1);
  assert.deepEqual(await headings(), before, "the engine names the same models");
});

test("fill-mask answers on first open with the embedded masked LM", { timeout: SLOW * 2 }, async () => {
  const page = await t.duet.tab("Fill-mask");
  assert.match(await t.duet.loaded(page, "minilm-mlm"), /BertForMaskedLM/);
  assert.equal(await page.getByRole("table", { name: "Fills" }).count(), 0, "no empty table before a fill");
  await page.getByLabel("Text with a mask").fill("the match ended in a [MASK] after extra time.");
  await page.getByRole("button", { name: "Fill the mask" }).click();
  const rows = page.getByRole("table", { name: "Fills" }).locator("tbody tr");
  await rows.first().waitFor({ timeout: SLOW });
  assert.equal(await rows.count(), 5);
  const scores = (await rows.locator("td:nth-child(2)").allTextContents()).map(Number);
  for (let i = 1; i < 5; i++) assert.ok(scores[i] <= scores[i - 1], `scores fall: ${scores}`);
  assert.ok(scores.reduce((a, b) => a + b) <= 1.0001, `${scores}`);
  for (const seq of await rows.locator("td:nth-child(3)").allTextContents()) {
    assert.match(seq, /^the match ended in a .+ after extra time\.$/);
  }
  await page.getByLabel("Top-k").fill("0");
  await page.getByRole("button", { name: "Fill the mask" }).click();
  assert.match(await t.duet.error(page), /top-k of 0: use 1 to 50/);
  await page.getByLabel("Top-k").fill("5");
});

test("compare, word by word: BERT's fills with the word masked next to GPT's guesses from the left", { timeout: SLOW * 3 }, async () => {
  let page = await t.duet.tab("Compare");
  const button = page.getByRole("button", { name: "Compare word by word" });
  await page.getByLabel("Sentence to compare").fill("Paris is the capital of France.");
  // The BERT side is the Fill-mask page's model: its embedded default first.
  await button.click();
  const table = page.getByRole("table", { name: "Masked vs next-token" });
  await table.waitFor({ timeout: SLOW });
  assert.match((await table.locator("thead th").allTextContents())[2], /minilm-mlm/);
  // Then whatever is loaded there.
  const fill = await t.duet.tab("Fill-mask");
  await t.duet.loadUrl(fill, `${t.hostUrl}/models/bert-mlm-f16/`);
  assert.match(await t.duet.loaded(fill, "bert-mlm-f16"), /BertForMaskedLM/);
  page = await t.duet.tab("Compare");
  await button.click();
  await table.locator("thead th").nth(2).filter({ hasText: "bert-mlm-f16" }).waitFor({ timeout: SLOW });
  const rows = table.locator("tbody tr");
  assert.deepEqual(await rows.locator("th").allTextContents(), ["Paris", "is", "the", "capital", "of", "France"]);
  assert.match(await rows.nth(0).locator("td.next").textContent(), /nothing to its left/);
  for (let i = 0; i < 6; i++) {
    assert.equal(await rows.nth(i).locator("td.masked li").count(), 3, `BERT row ${i}`);
    if (i > 0) assert.equal(await rows.nth(i).locator("td.next li").count(), 3, `GPT row ${i}`);
  }
  const heads = await table.locator("thead th").allTextContents();
  assert.match(heads[1], /gpt2-shakespeare/);
  assert.match(heads[2], /bert-mlm-f16/);
});

test("inside: GPT's attention is a triangle, BERT's a square, by layer and head", { timeout: SLOW * 2 }, async () => {
  const page = await t.duet.tab("Inside");
  // Before a run, the headings name the models a run would use: the BERT side follows the choice.
  assert.match(await page.getByRole("heading", { name: /^GPT/ }).textContent(), /^GPT \(gpt2-shakespeare\) — /);
  assert.match(await page.getByRole("heading", { name: /^BERT/ }).textContent(), /^BERT \(minilm-sst2\) — /);
  await page.getByLabel("Encoder to show").selectOption("ner");
  assert.match(await page.getByRole("heading", { name: /^BERT/ }).textContent(), /^BERT \(minilm-conll03\) — /);
  await page.getByLabel("Encoder to show").selectOption("classify");
  await page.getByLabel("Sentence to look inside").fill("The king is dead, long live the king.");
  await page.getByRole("button", { name: "Show attention" }).click();
  const gpt = page.getByRole("table", { name: "GPT attention" });
  const bert = page.getByRole("table", { name: "BERT attention" });
  await gpt.waitFor({ timeout: SLOW });
  await bert.waitFor({ timeout: SLOW });
  assert.match(await page.getByRole("heading", { name: /^GPT/ }).textContent(), /gpt2-shakespeare/);
  assert.match(await page.getByRole("heading", { name: /^BERT/ }).textContent(), /minilm-sst2/);
  const cells = (table) =>
    table.locator("tbody tr").evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll("td")].map((td) => Number(td.dataset.p))),
    );
  const rowsSumToOne = (m, who) =>
    m.forEach((row, q) => {
      const sum = row.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-3, `${who} row ${q} sums to ${sum}`);
    });
  const g = await cells(gpt);
  const b = await cells(bert);
  assert.ok(g.length >= 8, `${g.length} GPT tokens`);
  assert.ok(g.every((row) => row.length === g.length), "GPT: one column per token");
  assert.ok(b.every((row) => row.length === b.length), "BERT: one column per token");
  // Causal: a GPT token never reads a later one; BERT's tokens do.
  g.forEach((row, q) => assert.ok(row.slice(q + 1).every((p) => p === 0), `GPT row ${q}: ${row}`));
  assert.ok(b.some((row, q) => row.slice(q + 1).some((p) => p > 0.01)), "BERT reads ahead");
  rowsSumToOne(g, "GPT");
  rowsSumToOne(b, "BERT");
  const head = await bert.locator("thead th").allTextContents();
  assert.equal(head[1], "[CLS]");
  assert.equal(head.at(-1), "[SEP]");
  // Another layer and head redraw from the same probabilities: the engine is not asked again.
  const posts = await t.duet.posts();
  assert.ok((await page.getByLabel("GPT layer").locator("option").count()) >= 2);
  await page.getByLabel("GPT layer").selectOption("1");
  await page.getByLabel("GPT head").selectOption("0");
  const g2 = await cells(gpt);
  assert.notDeepEqual(g2, g, "layer 2, head 1 differs from layer 1's average");
  g2.forEach((row, q) => assert.ok(row.slice(q + 1).every((p) => p === 0)));
  rowsSumToOne(g2, "GPT head");
  assert.equal(await t.duet.posts(), posts, "switching layer and head asked the engine nothing");
  // Focusing a token highlights its row.
  await gpt.locator("tbody th").nth(3).focus();
  assert.equal(await gpt.locator("tbody tr.focus").count(), 1);
  assert.match(await gpt.locator("tbody tr.focus th").textContent(), /./);
});

test("inside: sentence embeddings as a similarity matrix, and a search that ranks them", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Inside");
  const sentences = [
    "A man is playing a guitar on stage.",
    "The stock market fell sharply today.",
    "Someone performs music for a crowd.",
    "Investors lost money as shares dropped.",
  ];
  await page.getByLabel("Sentences to embed").fill(sentences.join("\n") + "\n\n");
  await page.getByRole("button", { name: "Compare sentences" }).click();
  const table = page.getByRole("table", { name: "Sentence similarity" });
  await table.waitFor({ timeout: SLOW });
  assert.match(await page.getByText(/^Model: /).textContent(), /all-MiniLM-L6-v2/);
  const sim = await table.locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => Number(td.dataset.sim))),
  );
  assert.equal(sim.length, 4, "blank lines are not sentences");
  sim.forEach((row, i) => {
    assert.equal(row.length, 4);
    assert.ok(Math.abs(row[i] - 1) < 1e-4, `a sentence is itself: ${row[i]}`);
    row.forEach((c, j) => assert.ok(Math.abs(c - sim[j][i]) < 1e-6, "symmetric"));
  });
  // Music with music, markets with markets, more than across.
  assert.ok(sim[0][2] > sim[0][1] && sim[0][2] > sim[0][3], JSON.stringify(sim));
  assert.ok(sim[1][3] > sim[1][0] && sim[1][3] > sim[1][2], JSON.stringify(sim));
  await page.getByLabel("Search the sentences").fill("a rock concert");
  await page.getByRole("button", { name: "Rank" }).click();
  const ranked = page.getByRole("list", { name: "Ranked sentences" }).getByRole("listitem");
  await ranked.nth(3).waitFor({ timeout: SLOW });
  const top2 = (await ranked.allTextContents()).slice(0, 2).join(" | ");
  assert.ok(top2.includes("guitar") && top2.includes("music"), top2);
  const scores = await ranked.evaluateAll((li) => li.map((l) => Number(l.dataset.sim)));
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "best first");
  await page.getByLabel("Sentences to embed").fill("only one line");
  await page.getByRole("button", { name: "Compare sentences" }).click();
  assert.match(await t.duet.error(page), /at least two sentences/);
});

test("on a phone's width no page, its results shown, is wider than the screen", async () => {
  const before = t.page.viewportSize();
  await t.page.setViewportSize({ width: 390, height: 844 });
  try {
    for (const tab of ["Generate", "Classify", "Entities", "Fill-mask", "Fine-tune", "Pretrain", "Compare", "Inside", "Models", "Bench"]) {
      await t.duet.tab(tab);
      const width = await t.page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${tab} is ${width} px wide on a 390 px screen`);
    }
  } finally {
    await t.page.setViewportSize(before);
  }
});

test("a copied link opens in a fresh profile with its inputs and model, and reproduces a greedy output", { timeout: SLOW * 3 }, async () => {
  const gen = await t.duet.tab("Generate");
  await gen.getByLabel("Prompt", { exact: true }).fill("JULIET: O Romeo, Romeo");
  const text = await t.duet.generateGreedy(10);
  await t.page.getByRole("button", { name: "Copy link" }).click();
  const url = await t.page.getByLabel("Link to this page").inputValue();
  assert.match(url, /#generate\?prompt=JULIET%3A%20O%20Romeo%2C%20Romeo&max=10&sample=false&/);
  assert.match(url, /&model=default%3Agpt2-shakespeare&hash=[0-9a-f]{10}$/);
  const fresh = await setup({ appUrl: t.duet.appUrl, gpu: true });
  try {
    await fresh.page.goto(url);
    const g = fresh.duet.section("Generate");
    assert.equal(await g.getByLabel("Prompt", { exact: true }).inputValue(), "JULIET: O Romeo, Romeo");
    assert.equal(await g.getByLabel("Sample").isChecked(), false);
    assert.equal(await g.getByLabel("Max new tokens").inputValue(), "10");
    await fresh.duet.loaded(g, "gpt2-shakespeare");
    await g.getByRole("button", { name: "Generate", exact: true }).click();
    await g.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
    assert.equal(await g.getByLabel("Generated text").textContent(), text);
    assert.equal(await g.getByLabel("Model differs from the link's").count(), 0);
    // A link made with other weights: the page loads the model it names and says it differs.
    await fresh.page.goto(url.replace(/hash=[0-9a-f]+$/, "hash=00000000ff"));
    const warning = fresh.duet.section("Generate").getByLabel("Model differs from the link's");
    await warning.waitFor({ timeout: SLOW });
    assert.match(await warning.textContent(), /00000000ff/);
  } finally {
    await fresh.close();
  }
  // The other pages keep their inputs in the address too.
  const page = await t.duet.tab("Entities");
  await page.getByLabel("Aggregation strategy").selectOption("first");
  await t.page.waitForFunction(() => location.hash.startsWith("#entities?text=") && location.hash.includes("aggregation=first"));
  const tune = await t.duet.tab("Fine-tune");
  await tune.getByLabel("Epochs").fill("5");
  await t.page.waitForFunction(() => location.hash.startsWith("#fine-tune?task=") && location.hash.includes("epochs=5"));
});

test("the text boxes of Fine-tune and Pretrain span their section, and their text fields show their hints", async () => {
  for (const [tab, label, fields] of [
    ["Fine-tune", "Training data", ["Base model"]],
    ["Pretrain", "Text to learn from", ["GPT's prompt", "BERT's sentence"]],
  ]) {
    const page = await t.duet.tab(tab);
    const box = page.getByLabel(label, { exact: true });
    const [area, set] = await box.evaluate((el) => [el.getBoundingClientRect().width, el.closest("fieldset").clientWidth]);
    assert.ok(area > 0.9 * set, `${tab}: "${label}" is ${area}px wide in a ${set}px section`);
    for (const name of fields) {
      // The placeholder fits: the field is at least as wide as its hint needs.
      const [width, needed] = await page.getByLabel(name, { exact: true }).evaluate((el) => {
        const ctx = document.createElement("canvas").getContext("2d");
        const style = getComputedStyle(el);
        ctx.font = style.font;
        const inner = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return [inner, ctx.measureText(el.placeholder).width];
      });
      assert.ok(width >= needed, `${tab}: "${name}" is ${width}px wide, its hint ${needed}px`);
    }
  }
});

test("the engine's parity checks pass in the browser on WebGPU", { timeout: SLOW * 3 }, async () => {
  const check = await t.duet.deviceCheck(SLOW * 3);
  assert.equal(check.passed, check.total, check.failures.join("\n"));
  assert.ok(check.total > 40, check.text);
  assert.equal(check.backend, "WebGPU", check.text);
});
