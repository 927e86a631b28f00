// The browser benchmark: Duet's engine, Duet through the app's own pages, and transformers.js on the
// same checkpoints, in one headless Chromium per backend, one after the other; prints the figures
// and their ratios. Run by `cargo xtask bench
// --browser`, which builds dist/ and the ONNX exports first and passes:
//
//   node browser-bench.mjs --dist DIR --gpt NAME=DUET_DIR=ONNX_DIR --bert NAME=DUET_DIR=ONNX_DIR
//        [--backends webgpu,cpu] [--new-tokens 160] [--from 32] [--json FILE]
//
// Everything is served from this machine (no CDN): the app at /, this folder's bench.html at
// /bench/, transformers.js and onnxruntime-web (npm, this folder's package.json) at /tjs/, Duet's
// checkpoints at /m/NAME/ and their ONNX exports at /tjsm/NAME/. The measuring is in bench.html,
// so any driver that can open a page (the GPU recipe's CDP driver, for one) gets the same figures.
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const model = (name) => {
  const v = opt(name, null);
  if (!v) return null;
  const [id, duet, onnx] = v.split("=");
  return { id, duet, onnx };
};
const gpt = model("gpt");
const bert = model("bert");
const dist = opt("dist", path.resolve(here, "../../dist"));
const backends = opt("backends", "webgpu,cpu").split(",");
const cfgBase = {
  newTokens: Number(opt("new-tokens", 160)),
  from: Number(opt("from", 32)),
  warmupTokens: 8,
  prompt: opt("prompt", "ROMEO:"),
  // 127 word pieces with [CLS] and [SEP] in the MiniLM vocabulary, 154 in BERT-base's (the table
  // prints the count).
  sentence: opt("sentence",
    "The film opens slowly, with long shots of the harbour at dawn and a score that never quite " +
    "settles, but by the second act the story finds its footing: the two sisters, estranged for a " +
    "decade, are forced to share the family house while the estate is sold, and every room holds an " +
    "argument neither of them wants to finish. The performances are generous, the dialogue is sharp " +
    "and often funny, and the ending, though quiet, earns every minute it takes to get there. " +
    "It is the kind of film that stays with you on the walk home, and it deserves a far larger " +
    "audience than it will probably find."),
  reps: 3,
  budgetMs: Number(opt("budget-ms", 3000)),
  genReps: 6,
  genBudgetMs: Number(opt("gen-budget-ms", 10000)),
};

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".json": "application/json", ".txt": "text/plain" };
const tjsDir = path.join(here, "node_modules/@huggingface/transformers/dist");
const ortDir = path.join(here, "node_modules/onnxruntime-web/dist");
const routes = [
  ["/bench/", here],
  ["/tjs/transformers.web.js", path.join(tjsDir, "transformers.web.js")],
  ["/tjs/", ortDir],
  ...[gpt, bert].filter(Boolean).flatMap((m) => [[`/m/${m.id}/`, m.duet], [`/tjsm/${m.id}/`, m.onnx]]),
  ["/", dist],
];
function resolve(url) {
  const p = decodeURIComponent(new URL(url, "http://x").pathname);
  for (const [prefix, target] of routes) {
    if (p === prefix || (prefix.endsWith("/") && p.startsWith(prefix))) {
      const rest = p.slice(prefix.length) || (prefix === "/bench/" ? "bench.html" : "index.html");
      const file = prefix.endsWith("/") ? path.join(target, rest) : target;
      return file.startsWith(target) ? file : null;
    }
  }
  return null;
}
const server = http.createServer((req, res) => {
  const file = resolve(req.url);
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404, { "content-type": "text/plain" });
    return res.end("not found");
  }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream",
    "content-length": fs.statSync(file).size, "cache-control": "no-store" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}`;

// WebGPU: SwiftShader here (what CI and this machine have); DUET_BENCH_FLAGS replaces these flags on
// a GPU machine. CPU: a browser without them, as on a machine without a GPU. (Forcing the page's
// compositor onto SwiftShader's GL to reach its WebGPU adapter costs ~45 ms of CPU per frame here,
// taken from the engine's two cores while a page streams; a GPU-less browser composites in
// software for a fraction of that.)
const webgpuFlags = (process.env.DUET_BENCH_FLAGS ||
  "--enable-features=Vulkan --use-angle=swiftshader --use-webgpu-adapter=swiftshader").split(" ");
async function open(backend) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "duet-bench-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--enable-unsafe-webgpu", "--no-first-run", ...(backend === "webgpu" ? webgpuFlags : [])],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(0);
  await page.goto(`${url}/bench/`);
  await page.waitForFunction(() => window.BENCH_READY === true);
  const adapter = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    const i = a?.info;
    return i ? `${i.vendor} ${i.architecture} ${i.description}`.trim() : "none";
  });
  const browser = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { page, adapter, browser, close };
}

const results = [];
const browsers = {};
for (const backend of backends) {
  const b = await open(backend);
  browsers[backend] = b;
  const cfg = { ...cfgBase, backend, gpt: gpt?.id, bert: bert?.id };
  // "pages": Duet through the app's own Generate and Classify pages, as a user clicks them.
  for (const engine of ["duet", "pages", "tjs"]) {
    process.stderr.write(`==> ${engine} on ${backend}\n`);
    const r = await b.page.evaluate(([e, c]) => window.BENCH.run(e, c), [engine, cfg]);
    results.push({ ...r, asked: backend });
    if (r.error) process.stderr.write(`    failed: ${r.error}\n`);
  }
  await b.close();
}
server.close();

const f = (v, d = 1) => (v == null ? "-" : v.toFixed(d));
console.log(`Browser: ${Object.values(browsers)[0]?.browser}`);
console.log(`GPT: ${gpt?.id ?? "-"}  BERT: ${bert?.id ?? "-"}  ` +
  `(decode = new tokens ${cfgBase.from}..${cfgBase.newTokens}, greedy; figures in page time)`);
const rows = [
  ["decode tokens/s", "decode_tokens_per_s", true],
  ["first token ms (warm)", "first_token_ms", false],
  [`${cfgBase.newTokens} new tokens, ms`, "run_ms", false],
  ["GPT load ms", "gpt_load_ms", false],
  ["BERT sentences/s, batch 1", "bert_b1_sentences_per_s", true],
  ["BERT sentences/s, batch 8", "bert_b8_sentences_per_s", true],
  ["BERT load ms", "bert_load_ms", false],
];
for (const backend of backends) {
  const [d, p, t] = ["Duet", "Duet pages", "transformers.js"].map((e) =>
    results.find((r) => r.asked === backend && r.engine === e));
  console.log(`\n${backend} (WebGPU adapter: ${browsers[backend].adapter}): Duet on ${d?.backend ?? "?"}, ` +
    `transformers.js on ${t?.backend ?? "?"}` +
    (t?.sentence_tokens ? `; BERT sentence ${t.sentence_tokens} tokens` : ""));
  console.log(`${"".padEnd(28)}${"Duet".padStart(10)}${"Duet pages".padStart(12)}${"transformers.js".padStart(17)}` +
    `${"Duet / tjs".padStart(12)}${"pages / tjs".padStart(13)}`);
  const ratio = (a, b, higher) => (a != null && b != null ? f(higher ? a / b : b / a, 2) + "x" : "-");
  for (const [label, key, higher] of rows) {
    const [a, pg, b] = [d?.[key], p?.[key], t?.[key]];
    console.log(`${label.padEnd(28)}${f(a).padStart(10)}${f(pg).padStart(12)}${f(b).padStart(17)}` +
      `${ratio(a, b, higher).padStart(12)}${ratio(pg, b, higher).padStart(13)}`);
  }
  if (d?.run_ms && p?.run_ms) {
    // Per token after the first (the page's first token also waits for the page's own
    // bookkeeping of the click): what the "page adds ≤ 10%" is about.
    const per = (r) => (r.run_ms - r.first_token_ms) / (r.new_tokens - 1);
    const extra = (per(p) / per(d) - 1) * 100;
    console.log(`Generate page: ${f(per(p), 2)} ms per token after the first, the engine ${f(per(d), 2)} ` +
      `(${extra >= 0 ? "+" : ""}${extra.toFixed(1)}%; the page also asks for each token's top 5)`);
  }
  if (d?.new_ids && t?.new_ids) {
    const n = Math.min(d.new_ids.length, t.new_ids.length);
    let same = 0;
    while (same < n && d.new_ids[same] === t.new_ids[same]) same++;
    console.log(`greedy tokens identical: ${same} of ${n}`);
  }
  if (d?.scores && t?.scores) {
    const diff = Math.max(...d.scores.map(([l, s]) => Math.abs(s - (t.scores.find((x) => x[0] === l)?.[1] ?? NaN))));
    console.log(`BERT label scores max |diff|: ${diff.toExponential(1)}`);
  }
  for (const r of [d, p, t]) if (r?.error) console.log(`${r.engine} failed: ${r.error.split("\n")[0]}`);
}
console.log("\n(ratio > 1: Duet is faster; \"Duet pages\": through the app's Generate and Classify pages)");
const out = opt("json", null);
if (out) {
  const adapters = Object.fromEntries(Object.entries(browsers).map(([k, b]) => [k, b.adapter]));
  fs.writeFileSync(out, JSON.stringify({ browser: Object.values(browsers)[0]?.browser, adapters, config: cfgBase, results }, null, 2));
}
process.exit(results.some((r) => r.error) ? 1 : 0);
