// Node module hooks for running the TypeScript sources without Vite: `?raw` imports become string
// modules, and wgsl_reflect resolves to its ES module build (its package entry is CommonJS).
import { register } from "node:module";

register(
  "data:text/javascript," +
    encodeURIComponent(`
import { readFile } from "node:fs/promises";
export async function resolve(specifier, context, next) {
  if (specifier === "wgsl_reflect") return next("wgsl_reflect/wgsl_reflect.module.js", context);
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.startsWith("file:") && url.endsWith("?raw")) {
    const text = await readFile(new URL(url.slice(0, -4)), "utf8");
    return { format: "module", source: "export default " + JSON.stringify(text) + ";", shortCircuit: true };
  }
  return next(url, context);
}`),
  import.meta.url,
);
