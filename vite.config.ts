// Vite/Vitest configuration: wgsl_reflect's package entry is CommonJS inside an ESM package, so it is
// aliased to its ES module build; tests run in forked processes because Dawn is a native addon. The
// browser end-to-end files run after the others, one at a time: each drives a Chromium that keeps both
// CPUs busy, and the demo's test measures how fast a drawn digit is read while training.
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { alias: { wgsl_reflect: "wgsl_reflect/wgsl_reflect.module.js" } },
  test: {
    pool: "forks",
    execArgv: ["--expose-gc"], // the long-run test measures the heap after collecting garbage
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["tests/**/*.test.ts"], exclude: ["tests/**/*.e2e.test.ts"], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "e2e", include: ["tests/**/*.e2e.test.ts"], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
