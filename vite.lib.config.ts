// Vite library build: src/index.ts → dist/lib/index.js (ES module, shaders inlined, wgsl_reflect bundled
// as its ES module build). Dawn ("webgpu") and node:* stay external: they are loaded only in Node.
import { defineConfig } from "vite";

export default defineConfig({
  resolve: { alias: [{ find: /^wgsl_reflect$/, replacement: "wgsl_reflect/wgsl_reflect.module.js" }] },
  publicDir: false,
  build: {
    lib: { entry: "src/index.ts", formats: ["es"], fileName: "index" },
    outDir: "dist/lib",
    emptyOutDir: true,
    target: "es2022",
    minify: false,
    sourcemap: true,
    rolldownOptions: { external: ["webgpu", /^node:/] },
  },
});
