// The README's front door, exactly as a new user runs it: `cargo xtask serve` (its server, its
// flags), then the page in Chromium with the embedded defaults answering on Generate, Classify
// and Entities. Also: missing files are 404s, no live-reload script is served, the wasm modules
// run their static constructors once (they are reactors, not commands), and what a cold first
// visit downloads before the first generated token; and, last, that the page then opens and
// generates offline with the server gone (the service worker keeps the app as this server sent it,
// precompressed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { setup, SLOW } from "./duet.mjs";
import { ROOT } from "./server.mjs";

/** `cargo xtask serve` builds first: up to date after `cargo xtask test`'s build, else long. */
const BUILD = 40 * 60_000;
/** Size budgets (bytes), so a regression (names left in, the page built for speed) fails here.
 *  The engine is built for speed (opt-level 3, Cargo.toml's `web-engine`): 22.5 MB raw, 4.9 MB
 *  gzip, 3.4 MB brotli, against 14.6 / 3.1 / 2.4 at opt-level z, for twice the CPU backend's
 *  decoding speed (ARCHITECTURE.md, "Speed on the CPU"). */
const PAGE_WASM_LIMIT = 1.5e6;
const WORKER_WASM_LIMIT = 24e6;
const WORKER_WASM_GZIP_LIMIT = 5.3e6;

let server, url, t;
let stopped = false;
const served = [];

before(async () => {
  const started = Date.now();
  server = spawn("cargo", ["xtask", "serve"], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from cargo xtask serve:\n${served.join("")}`)), BUILD);
    const watch = (chunk) => {
      served.push(chunk.toString());
      const m = served.join("").match(/Duet is at (http:\/\/[^\s/]+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    server.stdout.on("data", watch);
    server.stderr.on("data", watch);
    server.on("exit", (code) => reject(new Error(`cargo xtask serve exited (${code}):\n${served.join("")}`)));
  });
  console.log(`cargo xtask serve answered at ${url} after ${((Date.now() - started) / 60_000).toFixed(1)} min`);
  t = await setup({ appUrl: url });
}, { timeout: BUILD });

/** Stops `cargo xtask serve` and everything it started (its process group); once is enough. */
function stopServer() {
  if (!server?.pid || stopped) return;
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    // already gone
  }
  stopped = true;
}

after(async () => {
  if (process.env.DUET_E2E_LOGS) console.log(t?.logs.join("\n"));
  await t?.close();
  stopServer();
});

test("missing files are 404, not the page", async () => {
  for (const missing of ["/models/gpt2-shakespeare/adapter_config.json", "/no-such-file.js", "/generate"]) {
    const resp = await fetch(url + missing);
    assert.equal(resp.status, 404, missing);
    assert.doesNotMatch(resp.headers.get("content-type") || "", /html/, missing);
  }
  const config = await fetch(`${url}/models/gpt2-shakespeare/config.json`);
  assert.equal(config.status, 200);
  assert.match(config.headers.get("content-type"), /application\/json/);
});

test("no live-reload script unless asked for with --watch", async () => {
  const page = await (await fetch(`${url}/`)).text();
  assert.doesNotMatch(page, /__duet\/build|__trunk|WebSocket/);
});

test("the wasm is precompressed and within its size budget", async () => {
  const sizes = {};
  for (const name of ["duet-app_bg.wasm", "duet-worker_bg.wasm"]) {
    const raw = await fetch(`${url}/${name}`, { headers: { "accept-encoding": "identity" } });
    const gz = await fetch(`${url}/${name}`, { headers: { "accept-encoding": "gzip" } });
    const br = await fetch(`${url}/${name}`, { headers: { "accept-encoding": "br" } });
    assert.equal(gz.headers.get("content-encoding"), "gzip");
    assert.equal(br.headers.get("content-encoding"), "br");
    sizes[name] = {
      raw: Number(raw.headers.get("content-length")),
      gzip: Number(gz.headers.get("content-length")),
      br: Number(br.headers.get("content-length")),
    };
    await Promise.all([raw, gz, br].map((r) => r.body?.cancel()));
  }
  console.log("wasm sizes (bytes):", JSON.stringify(sizes));
  assert.ok(sizes["duet-app_bg.wasm"].raw < PAGE_WASM_LIMIT, JSON.stringify(sizes));
  assert.ok(sizes["duet-worker_bg.wasm"].raw < WORKER_WASM_LIMIT, JSON.stringify(sizes));
  assert.ok(sizes["duet-worker_bg.wasm"].gzip < WORKER_WASM_GZIP_LIMIT, JSON.stringify(sizes));
});

test("a cold first visit: the default GPT generates; what it downloaded", { timeout: SLOW * 2 }, async () => {
  let bytes = 0;
  let counting = true;
  t.context.on("requestfinished", async (req) => {
    const sizes = await req.sizes().catch(() => null);
    if (counting && sizes) bytes += sizes.responseBodySize + sizes.responseHeadersSize;
  });
  await t.duet.open("generate");
  const gen = t.duet.section("Generate");
  await t.duet.loaded(gen, "gpt2-shakespeare");
  await gen.getByLabel("Sample").uncheck();
  await gen.getByLabel("Max new tokens").fill("8");
  await gen.getByRole("button", { name: "Generate", exact: true }).click();
  await gen.getByRole("list", { name: "Generated tokens" }).getByRole("listitem").first().waitFor({ timeout: SLOW });
  counting = false;
  console.log(`cold first visit: ${(bytes / 1e6).toFixed(1)} MB transferred before the first generated token`);
  await gen.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
  assert.equal(await gen.getByRole("list", { name: "Generated tokens" }).getByRole("listitem").count(), 8);
  assert.ok(bytes > 0);
});

test("the Classify, Entities and Fill-mask defaults load and answer", { timeout: SLOW * 3 }, async () => {
  const classify = await t.duet.tab("Classify");
  await t.duet.loaded(classify, "minilm-sst2");
  assert.deepEqual(await t.duet.classify("A wonderful, moving film. I loved every minute."), ["positive", "negative"]);
  const entities = await t.duet.tab("Entities");
  await t.duet.loaded(entities, "minilm-conll03");
  const found = await t.duet.entities("Angela Merkel visited Paris.");
  assert.equal(found["Angela Merkel"], "PER", JSON.stringify(found));
  assert.equal(found["Paris"], "LOC", JSON.stringify(found));
  const fill = await t.duet.tab("Fill-mask");
  await t.duet.loaded(fill, "minilm-mlm");
  await fill.getByRole("button", { name: "Fill the mask" }).click();
  const rows = fill.getByRole("table", { name: "Fills" }).locator("tbody tr");
  await rows.first().waitFor({ timeout: SLOW });
  assert.equal(await rows.count(), 5);
});

test("on a software WebGPU adapter (SwiftShader) the app runs on the CPU, and says so", async () => {
  const adapter = await t.page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? { fallback: a.info?.isFallbackAdapter ?? a.isFallbackAdapter, arch: a.info?.architecture } : null;
  });
  const software = adapter && (adapter.fallback || /swiftshader/i.test(adapter.arch || ""));
  if (software) {
    assert.equal(await t.duet.backend(), "CPU");
    assert.match(await t.duet.notice(), /software renderer.*\?gpu=1/s);
  } else {
    assert.equal(await t.duet.backend(), adapter ? "WebGPU" : "CPU", JSON.stringify(adapter));
  }
});

test("bench reports tokens/s and sentences/s", { timeout: SLOW * 2 }, async () => {
  const page = await t.duet.tab("Bench");
  // Nothing measured yet: no empty tables, only the buttons.
  assert.equal(await page.getByRole("table").count(), 0);
  await page.getByRole("button", { name: "Run benchmark" }).click();
  const table = page.getByRole("table", { name: "Benchmark results" });
  await table.locator("tbody tr").nth(3).waitFor({ timeout: SLOW * 2 });
  const text = await table.innerText();
  console.log(`Bench page on ${await t.duet.backend()}:\n${text}`);
  assert.match(text, /tokens\/s/);
  assert.match(text, /sentences\/s/);
  assert.equal(await table.locator("tbody tr").count(), 4);
});

test("bench times each operation of a layer at 1 and 128 tokens", { timeout: SLOW }, async () => {
  const page = await t.duet.tab("Bench");
  await page.getByRole("button", { name: "Time each operation" }).click();
  const table = page.getByRole("table", { name: "Operation timings" });
  await table.locator("tbody tr").first().waitFor({ timeout: SLOW });
  const rows = await table.locator("tbody tr").allInnerTexts();
  console.log(`Operation timings on ${await t.duet.backend()}:\n${rows.join("\n")}`);
  // The read-back floor, then the same 11 ops at each length.
  assert.equal(rows.length, 23);
  for (const ops of ["linear 1×768→3072", "linear 128×768→3072", "softmax 12×128×128", "attention, 12 heads × 128 tokens"]) {
    assert.ok(rows.some((r) => r.startsWith(ops)), `${ops} in ${rows.join(" | ")}`);
  }
  for (const r of rows) assert.match(r, /\t\d+\.\d\d ms$/, r);
});

test("the engine's parity checks pass in the browser on the engine the app picked", { timeout: SLOW * 2 }, async () => {
  // Here that is the CPU engine (SwiftShader is left for it): its wasm-only kernels (the SIMD
  // matmul, exp and erf of `cpu_kernels/`) are checked against the fixtures only here.
  const check = await t.duet.deviceCheck(SLOW * 2);
  console.log(`device check: ${check.text}`);
  assert.equal(check.passed, check.total, check.failures.join("\n"));
  assert.ok(check.total > 40, check.text);
  assert.equal(check.backend, await t.duet.backend(), check.text);
});

test("static constructors ran once in each wasm module, after all that work", async () => {
  // Command-style modules rerun every constructor on each call from JavaScript: thousands by now.
  assert.deepEqual(await t.duet.constructorRuns(), { page: 1, worker: 1 });
});

test("no console errors (no live-reload socket, no failed fetches)", async () => {
  const errors = t.logs.filter((l) => l.startsWith("[error]") || l.startsWith("[pageerror]"));
  assert.deepEqual(errors, []);
});

test("offline after the first visit: the page opens from the service worker and generates", { timeout: SLOW * 2 }, async () => {
  await t.page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: SLOW / 4 });
  stopServer();
  await t.context.setOffline(true);
  try {
    await t.page.reload();
    await t.duet.waitReady();
    const gen = await t.duet.tab("Generate");
    assert.match(await t.duet.loaded(gen, "gpt2-shakespeare"), /from the browser cache/);
    await gen.getByLabel("Sample").uncheck();
    await gen.getByLabel("Max new tokens").fill("4");
    await gen.getByRole("button", { name: "Generate", exact: true }).click();
    await gen.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
    assert.equal(await gen.getByRole("list", { name: "Generated tokens" }).getByRole("listitem").count(), 4);
  } finally {
    await t.context.setOffline(false);
  }
});
