// Duet's service worker: keeps the app (HTML, JS, wasm, CSS) so the page opens offline.
// Model files are not handled here: the engine keeps them in its own Cache Storage bucket.
const APP_CACHE = "duet-app-v1";
const SHELL = [
  "./",
  "./index.html",
  "./style.css",
  "./manifest.json",
  "./duet-app.js",
  "./duet-app_bg.wasm",
  "./duet-worker.js",
  "./duet-worker_bg.wasm",
  "./duet-worker_loader.js",
];

/** Keeps a copy of `resp` made from its bytes. Not `cache.put(req, resp)` or `cache.addAll`:
 *  they hand Chromium the network stream, and when the disk is low (a few GB free) Chromium
 *  refuses to spool a streamed body over ~10 MB ("Cache.put() encountered a network error"). The
 *  engine's wasm is ~22 MB, so the app never went offline-ready on such a disk (CI's included).
 *  Only the content type is kept: the bytes are already decoded, so a content-encoding or
 *  content-length from the network would be wrong for them. */
async function keep(cache, req, resp) {
  const body = await resp.arrayBuffer();
  const headers = { "content-type": resp.headers.get("content-type") || "application/octet-stream" };
  await cache.put(req, new Response(body, { status: resp.status, statusText: resp.statusText, headers }));
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(APP_CACHE);
      await Promise.all(
        SHELL.map(async (path) => {
          const resp = await fetch(path, { cache: "no-cache" });
          if (!resp.ok) throw new Error(`service worker: ${path} answered HTTP ${resp.status}`);
          await keep(cache, path, resp);
        }),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

// Network first, so a rebuilt app is picked up at once; the cache answers when offline.
self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || url.pathname.includes("/models/") || url.pathname.includes("/fixtures/")) {
    return;
  }
  event.respondWith(
    fetch(req)
      .then((resp) => {
        if (resp.ok) {
          // A failed copy (quota) leaves the previous one; the page gets its answer either way.
          const copy = resp.clone();
          event.waitUntil(caches.open(APP_CACHE).then((cache) => keep(cache, req, copy)).catch(() => {}));
        }
        return resp;
      })
      .catch(() =>
        caches.match(req, { ignoreSearch: true }).then((hit) => hit || caches.match("./index.html")),
      ),
  );
});
