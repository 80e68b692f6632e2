// Vite library build: the core entry src/index.ts → dist/lib/index.js and the subpath entries
// src/entry/*.ts → dist/lib/{io,ops,data,models}.js, minified ES modules with source maps, and the core's
// Node-only half, src/entry/node.ts → dist/lib/node.js (not an export: the core imports it at run time
// in Node). The shaders are inlined without comments or indentation, line for line (compiler line
// numbers stay true), with their own identifiers shortened (src/gpu/wgsl_mangle.ts); their layouts come
// from the build-time reflection table, so wgsl_reflect is not bundled. Dawn ("webgpu") and node:* are
// reached only at run time in Node, never through an import a bundler sees.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, normalizePath, type Plugin } from "vite";
import { shaderReflection } from "./src/gpu/reflection.generated.ts";
import { shippedReflection, shipShaders, type ShippedShaders } from "./src/gpu/wgsl_mangle.ts";
import { packReflection } from "./src/gpu/reflection_pack.ts";

/**
 * The shaders as shipped: each .wgsl?raw import gets its file minified and renamed, the renaming being
 * made over all of shaders/ at once; the reflection table gets the shipped code's fingerprints (and the
 * build fails if the table was made for other sources: `npm run reflect`) and is shipped packed as text
 * (src/gpu/reflection_pack.ts).
 */
function shippedWgsl(): Plugin {
  const dir = normalizePath(fileURLToPath(new URL("./shaders/", import.meta.url)));
  const table = normalizePath(fileURLToPath(new URL("./src/gpu/reflection.generated.ts", import.meta.url)));
  let sources: Record<string, string> = {};
  let shipped: ShippedShaders | undefined;
  return {
    name: "gradwgsl:shipped-wgsl",
    enforce: "pre",
    buildStart() {
      const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".wgsl"));
      sources = Object.fromEntries(files.map((f) => [f.replaceAll("\\", "/"), readFileSync(dir + f, "utf8")]));
      shipped = shipShaders(sources);
    },
    load(id) {
      if (id === table) {
        const packed = packReflection(shippedReflection(shaderReflection, sources, shipped!));
        return `import { unpackReflection } from "./reflection_pack.ts";\nexport const shaderReflection = unpackReflection(${JSON.stringify(packed)});`;
      }
      if (!id.endsWith(".wgsl?raw")) return null;
      const file = id.slice(dir.length, -"?raw".length);
      const code = shipped!.sources[file];
      if (!id.startsWith(dir) || code === undefined) throw new Error(`${id}: not a shader file under ${dir}`);
      return `export default ${JSON.stringify(code)};`;
    },
  };
}

export default defineConfig({
  publicDir: false,
  plugins: [shippedWgsl()],
  build: {
    lib: { entry: { index: "src/index.ts", io: "src/entry/io.ts", ops: "src/entry/ops.ts", data: "src/entry/data.ts", models: "src/entry/models.ts", node: "src/entry/node.ts" }, formats: ["es"] },
    outDir: "dist/lib",
    emptyOutDir: true,
    target: "es2022",
    minify: true,
    sourcemap: true,
    // Vite leaves whitespace in ES library builds; minify fully. Statements are not joined into comma
    // sequences: gzip packs them 36 B smaller as they are. No comments: the only ones left were /* @__PURE__ */
    // on `new Map` and typed arrays, which bundlers take as pure without them (82 B).
    // "allow-extension": dist/lib/index.js may also export the internals the subpath entries import
    // from it (src/entry/), so the core stays one file instead of chunks split by entry. The one other
    // chunk is code the core imports dynamically, on first use: dist/lib/diagnostics.js (model.kernelTimes,
    // fit's divergence diagnosis).
    rolldownOptions: { preserveEntrySignatures: "allow-extension", external: ["webgpu", /^node:/], output: { chunkFileNames: "[name].js", comments: false, minify: { compress: { keepNames: { function: false, class: true }, sequences: false }, mangle: { keepNames: { function: false, class: true } }, codegen: true } } },
  },
});
