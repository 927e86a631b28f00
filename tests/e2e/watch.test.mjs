// `cargo xtask serve --watch`, for developers: the served page carries the live-reload script,
// and a change to a source rebuilds the app and bumps the build number the page polls.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./server.mjs";

const BUILD = 40 * 60_000;
const PORT = 8097;
const url = `http://127.0.0.1:${PORT}`;
const probe = path.join(ROOT, "public", ".watch-probe");
let server;
let output = "";

function waitFor(pattern, timeout) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`waited for ${pattern}:\n${output}`)), timeout);
    const check = () => {
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve();
      } else setTimeout(check, 200);
    };
    check();
  });
}

before(async () => {
  server = spawn("cargo", ["xtask", "serve", "--watch", "--port", String(PORT)], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => (output += d));
  server.stderr.on("data", (d) => (output += d));
  await waitFor(/Watching the sources/, BUILD);
}, { timeout: BUILD });

after(() => {
  fs.rmSync(probe, { force: true });
  if (server?.pid) process.kill(-server.pid, "SIGTERM");
});

test("the page carries the live-reload script only when watching", async () => {
  const page = await (await fetch(`${url}/`)).text();
  assert.match(page, /__duet\/build/);
  assert.equal(await (await fetch(`${url}/__duet/build`)).text(), "1");
});

test("a change to a source rebuilds the app and bumps the build number", { timeout: 10 * 60_000 }, async () => {
  fs.writeFileSync(probe, `changed at ${Date.now()}\n`);
  await waitFor(/Rebuilt: Duet is at/, 10 * 60_000);
  assert.equal(await (await fetch(`${url}/__duet/build`)).text(), "2");
  assert.equal((await fetch(`${url}/no-such-file`)).status, 404);
});
