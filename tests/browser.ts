// Shared set-up for tests that drive headless Chromium: the flags that give it a SwiftShader WebGPU
// adapter without a GPU, and a static file server (WebGPU needs a secure context: http://localhost).
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import type { Browser, Page, Viewport } from "puppeteer";

export const CHROMIUM_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const MIME: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".json": "application/json" };

/**
 * Serves the files under `dir` on 127.0.0.1 (a path ending in / gets its index.html), nothing outside
 * it; `sent` is told the path and size of every file it sends.
 */
export function serveStatic(dir: string, sent?: (path: string, bytes: number) => void): Promise<Server> {
  const s = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(dir, path.endsWith("/") ? `${path}index.html` : path);
    try {
      if (!file.startsWith(dir)) throw new Error(`outside ${dir}`);
      const body = readFileSync(file);
      res.writeHead(200, { "Content-Type": MIME[extname(file)] ?? "application/octet-stream", "Content-Length": body.byteLength });
      res.end(body);
      sent?.(path, body.byteLength);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  return new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve(s)));
}

/** A new page at `url` in `viewport`, with every page error and console error collected into `errors`. */
export async function openPage(browser: Browser, url: string, viewport: Viewport = { width: 1280, height: 800 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.setViewport(viewport);
  await page.goto(url);
  return { page, errors };
}
