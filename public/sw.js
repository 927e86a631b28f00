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

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(APP_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
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
          const copy = resp.clone();
          caches.open(APP_CACHE).then((cache) => cache.put(req, copy));
        }
        return resp;
      })
      .catch(() =>
        caches.match(req, { ignoreSearch: true }).then((hit) => hit || caches.match("./index.html")),
      ),
  );
});
