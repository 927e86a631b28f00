// Page objects for Duet: how a user finds things (by role and accessible name), in one place.
import { test } from "node:test";
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { appServer, modelServer, listen } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Generous: WebGPU in CI is SwiftShader, a GPU emulated on the CPU. */
export const SLOW = 240_000;

/** Browser, app server and model host for one test file. `appUrl`: the app is already served
 *  there (by `cargo xtask serve`); else `app` (our test server for `dist/` by default) serves it.
 *  `gpu`: open the app with `?gpu=1`, on WebGPU even though CI's adapter is SwiftShader (which
 *  the app otherwise leaves for its faster CPU engine). */
export async function setup({ appUrl = null, app = appServer(), gpu = false } = {}) {
  const host = modelServer();
  const ownApp = appUrl ? null : app;
  appUrl = appUrl ? appUrl.replace(/\/$/, "") : await listen(app);
  const hostUrl = await listen(host);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "duet-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    args: [
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--enable-features=Vulkan",
      "--use-angle=swiftshader",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync", ...(process.env.CHROME_LOG ? ["--enable-logging=stderr", "--v=0"] : []),
    ],
  });
  // Counts the page's messages to its workers (`window.__duetPosts`): a test can tell a view
  // that redraws from what it has from one that asks the engine again.
  await context.addInitScript(() => {
    window.__duetPosts = 0;
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (...args) {
      window.__duetPosts += 1;
      return post.apply(this, args);
    };
  });
  const page = context.pages()[0] || (await context.newPage());
  const logs = [];
  page.on("console", (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  return {
    context,
    page,
    appUrl,
    hostUrl,
    logs,
    duet: new Duet(page, appUrl, hostUrl, gpu ? "?gpu=1" : ""),
    /** Stops serving the app (for offline tests: only the service worker can answer then). */
    stopApp() {
      ownApp?.close();
      ownApp?.closeAllConnections();
    },
    async close() {
      await context.close();
      ownApp?.close();
      ownApp?.closeAllConnections();
      host.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** node:test's `test` for a file whose browser is `env()` (its `setup`): a failing test also
 *  reports what the page showed (its alerts and status lines) and its last console lines, the
 *  engine's warnings among them, so that a failure in CI can be read without running it again.
 *  A test that runs past its `timeout` fails with that report too: the wrapper keeps the time
 *  itself, and node's own limit, a minute later, only stops a test whose report hangs. */
export function pageTest(env) {
  return (name, options, fn) => {
    if (typeof options === "function") [options, fn] = [{}, options];
    const limit = options.timeout ?? SLOW;
    return test(name, { ...options, timeout: limit + 60_000 }, async (ctx) => {
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`test timed out after ${limit} ms`)), limit);
      });
      try {
        await Promise.race([fn(ctx), late]);
      } catch (e) {
        throw new Error(`${e?.message ?? e}\n${await pageReport(env())}`, { cause: e });
      } finally {
        clearTimeout(timer);
      }
    });
  };
}

async function pageReport(t) {
  if (!t) return "(no page: setup failed)";
  const texts = (role) => t.page.getByRole(role).allTextContents().catch((e) => [`(unreadable: ${e.message})`]);
  return [
    `alerts on the page: ${JSON.stringify(await texts("alert"))}`,
    `status lines: ${JSON.stringify((await texts("status")).filter((s) => s.trim()))}`,
    "the page's last console lines:",
    ...t.logs.slice(-40),
  ].join("\n");
}

export class Duet {
  constructor(page, appUrl, hostUrl, query = "") {
    this.page = page;
    this.appUrl = appUrl;
    this.hostUrl = hostUrl;
    this.query = query;
  }

  async open(tab = "generate") {
    await this.page.goto(`${this.appUrl}/${this.query}#${tab}`);
    await this.waitReady();
  }

  async waitReady() {
    await this.page.getByRole("status", { name: "Compute device" }).filter({ hasText: "Running on" }).waitFor({ timeout: SLOW });
  }

  /** The app-wide notice (CPU fallback, engine restart), or "" when there is none. */
  async notice() {
    const alert = this.page.locator(".notice[role=alert]");
    return (await alert.count()) ? alert.textContent() : "";
  }

  async backend() {
    return (await this.page.getByRole("status", { name: "Compute device" }).textContent()).replace("Running on ", "");
  }

  async tab(name) {
    await this.page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name, exact: true }).click();
    return this.section(name);
  }

  section(name) {
    const titles = { Compare: "Compare GPT and BERT", Inside: "Inside the models" };
    return this.page.getByRole("region", { name: titles[name] || name, exact: true });
  }

  /** Waits until the section's picker says a model is loaded (optionally one whose text matches). */
  async loaded(section, text = "Loaded") {
    const info = section.getByLabel("Loaded model");
    await info.filter({ hasText: text }).waitFor({ timeout: SLOW });
    return info.textContent();
  }

  async loadUrl(section, url) {
    await section.getByLabel("Model URL").fill(url);
    await section.getByRole("button", { name: "Load from URL" }).click();
  }

  async loadHub(section, repo) {
    await section.getByLabel("Hub repo id").fill(repo);
    await section.getByRole("button", { name: "Load from Hub" }).click();
  }

  async setHub(endpoint) {
    const models = await this.tab("Models");
    await models.getByLabel("Hub address").fill(endpoint);
  }

  /** How often each wasm module's static constructors ran: 1 each, when they are reactors
   *  (a "command" module reruns them on every call from JavaScript). */
  async constructorRuns() {
    const page = await this.page.evaluate(async () => (await import("./duet-app.js")).constructor_runs());
    const worker = this.page.workers().find((w) => w.url().includes("duet-worker"));
    const engine = worker ? await worker.evaluate(() => wasm_bindgen.constructor_runs()) : null;
    return { page, worker: engine };
  }

  /** Greedy generation of `n` tokens on the Generate page; resolves to the text. */
  async generateGreedy(n) {
    const gen = this.section("Generate");
    await gen.getByLabel("Sample").uncheck();
    await gen.getByLabel("Max new tokens").fill(String(n));
    await gen.getByRole("button", { name: "Generate", exact: true }).click();
    await gen.getByRole("status").filter({ hasText: "Done" }).waitFor({ timeout: SLOW });
    return gen.getByLabel("Generated text").textContent();
  }

  /** Classifies `text` on the Classify page; resolves to the labels, best first. */
  /** Runs the Bench page's device check (the engine's parity checks against the fixtures) and
   *  resolves to its verdict: `{ text, passed, total, backend, failures }`. */
  async deviceCheck(timeout) {
    const page = await this.tab("Bench");
    await page.getByRole("button", { name: "Check this device" }).click();
    const verdict = page.getByRole("status", { name: "Device check result" });
    await verdict.filter({ hasText: "checks passed on" }).waitFor({ timeout });
    const text = await verdict.textContent();
    const [, passed, total, backend] = text.match(/(\d+) of (\d+) checks passed on (\w+)/);
    const failures = await page.getByRole("table", { name: "Device checks" }).locator("tr.failed").allTextContents();
    return { text, passed: Number(passed), total: Number(total), backend, failures };
  }

  async classify(text) {
    const page = this.section("Classify");
    await page.getByLabel("Text to classify").fill(text);
    await page.getByRole("button", { name: "Classify" }).click();
    const bars = page.getByRole("list", { name: "Label scores" }).getByRole("listitem");
    await bars.first().waitFor({ timeout: SLOW });
    const labels = [];
    for (const b of await bars.all()) labels.push(await b.getAttribute("data-label"));
    return labels;
  }

  /** Tags `text` on the Entities page; resolves to {entity text: label}. */
  async entities(text) {
    const page = this.section("Entities");
    await page.getByLabel("Text to tag").fill(text);
    await page.getByRole("button", { name: "Tag entities" }).click();
    const marks = page.getByLabel("Tagged text").locator("mark");
    await marks.first().waitFor({ timeout: SLOW });
    const found = {};
    for (const m of await marks.all()) {
      found[(await m.evaluate((el) => el.firstChild.textContent)).trim()] = await m.getAttribute("data-label");
    }
    return found;
  }

  /** Messages the page has sent its workers so far (engine requests among them). */
  async posts() {
    return this.page.evaluate(() => window.__duetPosts);
  }

  /** The error shown in a section (role alert), once there is one. */
  async error(section) {
    const alert = section.getByRole("alert");
    await alert.first().waitFor({ timeout: SLOW });
    return alert.first().textContent();
  }
}
