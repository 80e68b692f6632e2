// Vite library build: the core entry src/index.ts → dist/lib/index.js and the subpath entries
// src/entry/*.ts → dist/lib/{io,ops,data}.js, minified ES modules with source maps, and the core's
// Node-only half, src/entry/node.ts → dist/lib/node.js (not an export: the core imports it at run time
// in Node). The shaders are inlined without comments or indentation, line for line (compiler line
// numbers stay true); their layouts come from the build-time reflection table, so wgsl_reflect is not
// bundled. Dawn ("webgpu") and node:* are reached only at run time in Node, never through an import a
// bundler sees.
import { readFile } from "node:fs/promises";
import { defineConfig, type Plugin } from "vite";
import { minifyWgsl } from "./src/gpu/wgsl_source.ts";

const minifiedWgsl: Plugin = {
  name: "gradwgsl:minify-wgsl",
  enforce: "pre",
  async load(id) {
    if (!id.endsWith(".wgsl?raw")) return null;
    return `export default ${JSON.stringify(minifyWgsl(await readFile(id.slice(0, -"?raw".length), "utf8")))};`;
  },
};

export default defineConfig({
  publicDir: false,
  plugins: [minifiedWgsl],
  build: {
    lib: { entry: { index: "src/index.ts", io: "src/entry/io.ts", ops: "src/entry/ops.ts", data: "src/entry/data.ts", node: "src/entry/node.ts" }, formats: ["es"] },
    outDir: "dist/lib",
    emptyOutDir: true,
    target: "es2022",
    minify: true,
    sourcemap: true,
    // Vite leaves whitespace in ES library builds; minify fully (pure annotations are kept).
    // "allow-extension": dist/lib/index.js may also export the internals the subpath entries import
    // from it (src/entry/), so the core stays one file instead of chunks split by entry.
    rolldownOptions: { preserveEntrySignatures: "allow-extension", external: ["webgpu", /^node:/], output: { minify: { compress: { keepNames: { function: false, class: true } }, mangle: { keepNames: { function: false, class: true } }, codegen: true } } },
  },
});
