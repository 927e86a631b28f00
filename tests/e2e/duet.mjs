// Page objects for Duet: how a user finds things (by role and accessible name), in one place.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { appServer, modelServer, listen } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Generous: WebGPU in CI is SwiftShader, a GPU emulated on the CPU. */
export const SLOW = 240_000;

/** Browser, app server and model host for one test file. */
export async function setup() {
  const app = appServer();
  const host = modelServer();
  const appUrl = await listen(app);
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
    duet: new Duet(page, appUrl, hostUrl),
    /** Stops serving the app (for offline tests: only the service worker can answer then). */
    stopApp() {
      app.close();
      app.closeAllConnections();
    },
    async close() {
      await context.close();
      app.close();
      host.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export class Duet {
  constructor(page, appUrl, hostUrl) {
    this.page = page;
    this.appUrl = appUrl;
    this.hostUrl = hostUrl;
  }

  async open(tab = "generate") {
    await this.page.goto(`${this.appUrl}/#${tab}`);
    await this.waitReady();
  }

  async waitReady() {
    await this.page.getByRole("status", { name: "Compute device" }).filter({ hasText: "Running on" }).waitFor({ timeout: SLOW });
  }

  async backend() {
    return (await this.page.getByRole("status", { name: "Compute device" }).textContent()).replace("Running on ", "");
  }

  async tab(name) {
    await this.page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name, exact: true }).click();
    return this.section(name);
  }

  section(name) {
    const titles = { Compare: "Compare GPT and BERT" };
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

  /** The error shown in a section (role alert), once there is one. */
  async error(section) {
    const alert = section.getByRole("alert");
    await alert.first().waitFor({ timeout: SLOW });
    return alert.first().textContent();
  }
}
