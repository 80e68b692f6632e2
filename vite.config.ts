// Vite/Vitest configuration: wgsl_reflect's package entry is CommonJS inside an ESM package, so it is
// aliased to its ES module build; tests run in forked processes because Dawn is a native addon.
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { alias: { wgsl_reflect: "wgsl_reflect/wgsl_reflect.module.js" } },
  test: {
    include: ["tests/**/*.test.ts"],
    pool: "forks",
    execArgv: ["--expose-gc"], // the long-run test measures the heap after collecting garbage
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
