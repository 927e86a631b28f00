// Test servers: the built app (dist/) on one origin, and a stand-in "model host" on another
// origin that serves the engine's fixtures the way the Hub and other hosts do — with CORS, and
// with each failure a user meets (404, CORS refusal, HTML instead of weights, unsupported
// architecture, missing tokenizer, a slow download to cancel).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "../..");
export const DIST = path.join(ROOT, "dist");
export const FIXTURES = path.join(ROOT, "model/tests/fixtures");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".json": "application/json",
  ".txt": "text/plain",
  ".md": "text/plain",
};

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendFile(res, file, headers = {}) {
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    return send(res, 404, "not found", headers);
  }
  const type = TYPES[path.extname(file)] || "application/octet-stream";
  const size = fs.statSync(file).size;
  res.writeHead(200, { "content-type": type, "content-length": size, ...headers });
  fs.createReadStream(file).pipe(res);
}

/** Serves `dist/` (the built app). `broken`: paths answered with bytes that are not the file. */
export function appServer({ broken = [] } = {}) {
  return http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let rel = decodeURIComponent(url.pathname);
    if (broken.includes(rel)) {
      return send(res, 200, "this is not the file", { "content-type": TYPES[path.extname(rel)] || "text/plain" });
    }
    if (rel.endsWith("/")) rel += "index.html";
    const file = path.join(DIST, path.normalize(rel));
    if (!file.startsWith(DIST)) return send(res, 403, "forbidden");
    sendFile(res, file, { "cache-control": "no-cache" });
  });
}

/** Serves `dist/` the way static hosts with SPA rewrites do (Netlify, Vercel, Cloudflare Pages,
 *  `trunk serve`): every missing path is answered with `index.html` and status 200. Fixture model
 *  folders sit beside the app at `/hosted/<fixture>/` — their missing optional files get the page
 *  too. */
export function spaServer() {
  const index = path.join(DIST, "index.html");
  return http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const rel = path.normalize(decodeURIComponent(url.pathname));
    const [, first, name, file] = rel.split("/");
    const candidate =
      first === "hosted" && name && file ? path.join(FIXTURES, path.basename(name), path.basename(file)) : path.join(DIST, rel);
    const exists = fs.existsSync(candidate) && fs.statSync(candidate).isFile();
    sendFile(res, exists ? candidate : index, { "cache-control": "no-cache" });
  });
}

const CORS = { "access-control-allow-origin": "*" };

/** The model host. Routes:
 *  /hub/<owner>/<fixture>/resolve/<rev>/<file>  Hub layout over the fixtures (CORS on)
 *  /models/<fixture>/<file>                     a plain folder URL (CORS on)
 *  /nocors/<fixture>/<file>                     same files, without CORS headers
 *  /html/<file>                                 config of gpt2-tiny, but model.safetensors is an HTML page
 *  /truncated/<file>                            gpt2-tiny with its model.safetensors cut short
 *  /llama/<file>                                 an architecture Duet does not support
 *  /notokenizer/<file>                          gpt2-tiny without any tokenizer file
 *  /slow/<fixture>/<file>                       model.safetensors trickles out (to cancel it)
 *  /hits                                         how many requests each path got (JSON)
 */
export function modelServer() {
  const hits = {};
  return http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const parts = decodeURIComponent(url.pathname).split("/").filter(Boolean);
    hits[url.pathname] = (hits[url.pathname] || 0) + 1;
    const fixture = (name, file) => path.join(FIXTURES, path.basename(name), path.basename(file));
    const [route, ...rest] = parts;
    switch (route) {
      case "hits":
        return send(res, 200, JSON.stringify(hits), { ...CORS, "content-type": "application/json" });
      case "hub": {
        // /hub/<owner>/<name>/resolve/<rev>/<file>
        const [, name, resolve, , file] = rest;
        if (resolve !== "resolve") return send(res, 404, "not found", CORS);
        return sendFile(res, fixture(name, file), CORS);
      }
      case "models":
        return sendFile(res, fixture(rest[0], rest[1]), CORS);
      case "nocors":
        return sendFile(res, fixture(rest[0], rest[1]));
      case "html":
        if (rest[0] === "model.safetensors") {
          return send(res, 200, "<!doctype html><html><body>Sign in to continue</body></html>", {
            ...CORS,
            "content-type": "text/html",
          });
        }
        return sendFile(res, fixture("gpt2-tiny", rest[0]), CORS);
      case "truncated":
        if (rest[0] === "model.safetensors") {
          const bytes = fs.readFileSync(fixture("gpt2-tiny", rest[0]));
          return send(res, 200, bytes.subarray(0, bytes.length - 100), { ...CORS, "content-type": "application/octet-stream" });
        }
        return sendFile(res, fixture("gpt2-tiny", rest[0]), CORS);
      case "llama":
        if (rest[0] === "config.json") {
          return send(res, 200, JSON.stringify({ model_type: "llama", architectures: ["LlamaForCausalLM"] }), CORS);
        }
        return sendFile(res, fixture("gpt2-tiny", rest[0]), CORS);
      case "notokenizer":
        if (["config.json", "model.safetensors"].includes(rest[0])) {
          return sendFile(res, fixture("gpt2-tiny", rest[0]), CORS);
        }
        return send(res, 404, "not found", CORS);
      case "slow": {
        const file = fixture(rest[0], rest[1]);
        if (rest[1] !== "model.safetensors" || !fs.existsSync(file)) return sendFile(res, file, CORS);
        const bytes = fs.readFileSync(file);
        res.writeHead(200, { ...CORS, "content-length": bytes.length * 50 });
        let sent = 0;
        const timer = setInterval(() => {
          if (res.destroyed || sent >= 50) {
            clearInterval(timer);
            return res.end();
          }
          res.write(bytes);
          sent += 1;
        }, 200);
        req.on("close", () => clearInterval(timer));
        return;
      }
      default:
        return send(res, 404, "not found", CORS);
    }
  });
}

/** Starts a server on a free port; resolves to its base URL. */
export function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}
