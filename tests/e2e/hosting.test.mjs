// Real servers answer a missing file with the app's page and status 200 (SPA rewrites on static
// hosts, proxies, captive portals). The app must still load its embedded defaults and any model
// folder by URL there, and must never keep such a page in its cache.
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { setup, pageTest, SLOW } from "./duet.mjs";
import { appServer, spaServer } from "./server.mjs";

let t;
const test = pageTest(() => t);
before(async () => {
  t = await setup({ app: spaServer() });
  await t.duet.open("generate");
});
after(async () => {
  if (process.env.DUET_E2E_LOGS) console.log(t.logs.join("\n"));
  await t?.close();
});

test("the server under test really answers misses with the page", async () => {
  const resp = await fetch(`${t.duet.appUrl}/models/gpt2-shakespeare/adapter_config.json`);
  assert.equal(resp.status, 200);
  assert.match(resp.headers.get("content-type"), /text\/html/);
});

test("every embedded default loads and answers", { timeout: SLOW * 3 }, async () => {
  const gen = t.duet.section("Generate");
  assert.match(await t.duet.loaded(gen, "gpt2-shakespeare"), /GPT2LMHeadModel/);
  assert.match(await t.duet.generateGreedy(4), /^ROMEO:.+/s);
  await t.duet.tab("Classify");
  await t.duet.loaded(t.duet.section("Classify"), "minilm-sst2");
  assert.equal((await t.duet.classify("A wonderful, moving film.")).length, 2);
  await t.duet.tab("Entities");
  await t.duet.loaded(t.duet.section("Entities"), "minilm-conll03");
  assert.equal((await t.duet.entities("Angela Merkel visited Paris."))["Angela Merkel"], "PER");
  const fill = await t.duet.tab("Fill-mask");
  assert.match(await t.duet.loaded(fill, "minilm-mlm"), /BertForMaskedLM/);
  await fill.getByRole("button", { name: "Fill the mask" }).click();
  const rows = fill.getByRole("table", { name: "Fills" }).locator("tbody tr");
  await rows.first().waitFor({ timeout: SLOW });
  assert.equal(await rows.count(), 5);
});

test("a model folder by URL loads: its missing optional files count as absent", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Fill-mask");
  await t.duet.loadUrl(page, `${t.duet.appUrl}/hosted/bert-mlm-f16/`);
  assert.match(await t.duet.loaded(page, "bert-mlm-f16"), /BertForMaskedLM/);
  await page.getByLabel("Text with a mask").fill("paris is the capital of [MASK].");
  await page.getByRole("button", { name: "Fill the mask" }).click();
  await page.getByRole("table", { name: "Fills" }).locator("tbody tr").first().waitFor({ timeout: SLOW });
});

test("a required file answered by the page is a clear error naming the URL", { timeout: SLOW }, async () => {
  const page = t.duet.section("Fill-mask");
  const missing = `${t.duet.appUrl}/hosted/no-such-model/`;
  await t.duet.loadUrl(page, missing);
  const message = await t.duet.error(page);
  assert.match(message, /web page instead of config\.json/);
  assert.ok(message.includes(`${missing}config.json`), message);
  // The model that was loaded stays.
  assert.match(await t.duet.loaded(page, "bert-mlm-f16"), /BertForMaskedLM/);
});

test("no web page is ever cached as a model file", async () => {
  const cached = await t.page.evaluate(async () => {
    const cache = await caches.open("duet-models-v1");
    const out = [];
    for (const req of await cache.keys()) {
      const body = new Uint8Array(await (await cache.match(req)).arrayBuffer());
      out.push({ url: req.url, first: body[0] });
    }
    return out;
  });
  assert.ok(cached.length >= 8, JSON.stringify(cached));
  const pages = cached.filter((c) => c.first === "<".charCodeAt(0));
  assert.deepEqual(pages, []);
  assert.ok(!cached.some((c) => c.url.endsWith("/adapter_config.json") && c.url.includes("gpt2-shakespeare")));
});

test("a broken cached file is evicted and fetched again", { timeout: SLOW }, async () => {
  // What an older version of the app could have stored: the page in place of a config.
  const url = `${t.duet.appUrl}/models/gpt2-shakespeare/config.json`;
  await t.page.evaluate(async (url) => {
    const cache = await caches.open("duet-models-v1");
    await cache.put(url, new Response("<!doctype html><html><body>Duet</body></html>", { headers: { "content-type": "text/html" } }));
  }, url);
  const gen = await t.duet.tab("Generate");
  await gen.getByRole("button", { name: "Load embedded" }).click();
  assert.match(await t.duet.loaded(gen, "gpt2-shakespeare"), /GPT2LMHeadModel/);
  // The page may already show the model from before while the worker is still re-fetching: wait
  // for the cache to hold the real config (a timeout fails the test).
  await t.page.waitForFunction(async (url) => {
    const cache = await caches.open("duet-models-v1");
    const hit = await cache.match(url);
    return hit !== undefined && (await hit.text()).trim()[0] === "{";
  }, url, { timeout: SLOW, polling: 100 });
});

test("an engine that cannot load is a clear error, not a page waiting forever", { timeout: SLOW }, async () => {
  const broken = await setup({ app: appServer({ broken: ["/duet-worker_bg.wasm"] }) });
  try {
    await broken.page.goto(`${broken.duet.appUrl}/#generate`);
    const notice = broken.page.locator(".notice[role=alert]");
    await notice.filter({ hasText: "The engine could not start" }).waitFor({ timeout: SLOW });
    // Told once: no worker is started again and again.
    await broken.page.waitForTimeout(1000);
    assert.ok(broken.page.workers().length <= 1, `${broken.page.workers().length} workers`);
  } finally {
    await broken.close();
  }
});
