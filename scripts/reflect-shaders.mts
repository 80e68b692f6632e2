// Build-time shader reflection: wgsl_reflect reads every kernel file (its libraries appended) and this
// writes src/gpu/reflection.generated.ts, the table the registry builds layouts from at run time.
// `npm run reflect` regenerates it; tests/reflection.test.ts checks that it matches the shaders.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ResourceType, WgslReflect } from "wgsl_reflect";
import { assemble, fingerprint, type BindingReflection, type EntryReflection, type ShaderReflection, type UniformReflection } from "../src/gpu/wgsl_source.ts";

export const REFLECT_COMMAND = "npm run reflect";
export const TABLE_PATH = "src/gpu/reflection.generated.ts";

const SCALARS = ["f32", "i32", "u32"] as const;

function literal(text: string): number | boolean | undefined {
  if (text === "true") return true;
  if (text === "false") return false;
  if (!/^(0[xX][0-9a-fA-F]+|\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)[uif]?$/.test(text)) return undefined;
  return Number(text.replace(/[uif]$/, ""));
}

/** The registry's view of one kernel file: entry points, bindings, uniform layout, overrides, workgroup sizes. */
export function reflectShader(file: string, sources: Readonly<Record<string, string>>): ShaderReflection {
  const { code } = assemble(file, sources);
  const where = `shaders/${file}`;
  let r: WgslReflect;
  try {
    r = new WgslReflect(code);
  } catch (e) {
    throw new Error(`${where}: wgsl_reflect cannot parse it (${(e as Error).message})`, { cause: e });
  }
  const overrides: ShaderReflection["overrides"] = {};
  for (const o of r.overrides) overrides[o.name] = null;
  for (const m of code.matchAll(/^\s*override\s+(\w+)\s*:\s*\w+\s*=\s*([^;]+);/gm)) overrides[m[1]!] = literal(m[2]!.trim()) ?? null;
  const entries: Record<string, EntryReflection> = {};
  for (const fn of r.entry.compute) {
    const bindings: BindingReflection[] = [];
    let uniform: UniformReflection | undefined;
    for (const v of [...fn.resources].sort((x, y) => x.binding - y.binding)) {
      if (v.group !== 0) throw new Error(`${where}: ${v.name} is in group ${v.group}; kernels use group 0 only`);
      if (v.resourceType === ResourceType.Uniform) {
        if (uniform) throw new Error(`${where}: ${fn.name} uses two uniforms (${uniform.name}, ${v.name}); kernels have at most one`);
        const s = r.getStructInfo(v.type.name);
        if (!s) throw new Error(`${where}: uniform ${v.name} must be a struct`);
        const members: UniformReflection["members"] = {};
        for (const m of s.members) {
          const type = SCALARS.find((t) => t === m.type.name);
          if (!type) throw new Error(`${where}: uniform ${s.name}.${m.name} is ${m.type.name}; the registry packs only ${SCALARS.join(", ")} members`);
          members[m.name] = { offset: m.offset, type };
        }
        uniform = { name: v.name, size: s.size, members };
        bindings.push({ name: v.name, binding: v.binding, type: "uniform" });
      } else if (v.resourceType === ResourceType.Storage) {
        bindings.push({ name: v.name, binding: v.binding, type: v.access === "read_write" ? "storage" : "read-only-storage" });
      } else {
        throw new Error(`${where}: ${v.name} is neither a uniform nor a storage buffer`);
      }
    }
    const attr = fn.attributes?.find((a) => a.name === "workgroup_size")?.value;
    if (attr === undefined) throw new Error(`${where}: ${fn.name} has no @workgroup_size`);
    const dims = (Array.isArray(attr) ? attr : [attr]).map((d) => String(d).trim());
    const workgroupSize = [0, 1, 2].map((i) => {
      const d = dims[i] ?? "1";
      const n = literal(d);
      if (typeof n === "number") return n;
      if (d in overrides) return d;
      throw new Error(`${where}: ${fn.name}'s @workgroup_size(${dims.join(", ")}) has "${d}", neither a literal nor an override`);
    }) as EntryReflection["workgroupSize"];
    entries[fn.name] = uniform ? { bindings, uniform, workgroupSize } : { bindings, workgroupSize };
  }
  return { fingerprint: fingerprint(code), overrides, entries };
}

/** The table for every kernel file among the sources (not the lib/ files, which are only appended). */
export function reflectShaders(sources: Readonly<Record<string, string>>): Record<string, ShaderReflection> {
  const table: Record<string, ShaderReflection> = {};
  for (const file of Object.keys(sources).sort()) if (!file.startsWith("lib/")) table[file] = reflectShader(file, sources);
  return table;
}

/** JSON on one line, with spaces after commas and inside braces. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(", ")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  return `{ ${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(", ")} }`;
}

/** JSON with short objects and arrays on one line, so the generated file reads as a table. */
function format(value: unknown, indent = ""): string {
  const flat = inline(value);
  if (flat.length + indent.length <= 120 || value === null || typeof value !== "object") return flat;
  const inner = indent + "  ";
  const items = Array.isArray(value) ? value.map((v) => inner + format(v, inner)) : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${format(v, inner)}`);
  return `${Array.isArray(value) ? "[" : "{"}\n${items.join(",\n")},\n${indent}${Array.isArray(value) ? "]" : "}"}`;
}

/** The generated module's text. */
export function renderTable(table: Record<string, ShaderReflection>): string {
  return (
    `// Generated by scripts/reflect-shaders.mts from shaders/*.wgsl (\`${REFLECT_COMMAND}\`); do not edit.\n` +
    `// What the registry needs of each kernel file, reflected by wgsl_reflect at build time.\n` +
    `import type { ReflectionTable } from "./wgsl_source.ts";\n\n` +
    `export const shaderReflection: ReflectionTable = ${format(table)};\n`
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { shaderSources } = await import("../src/gpu/shaders.ts");
  await import("../src/kernels/conv_pool.ts"); // shaders the core loads on first use add themselves to shaderSources
  await (await import("../src/kernels.ts")).loadSubgroupShader();
  const path = fileURLToPath(new URL(`../${TABLE_PATH}`, import.meta.url));
  const text = renderTable(reflectShaders(shaderSources));
  let old = "";
  try {
    old = readFileSync(path, "utf8");
  } catch {
    // first run
  }
  if (old === text) console.log(`${TABLE_PATH} is up to date`);
  else {
    writeFileSync(path, text);
    console.log(`wrote ${TABLE_PATH}`);
  }
}
