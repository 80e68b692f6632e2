// The pipeline registry: compile errors carry file, line and message (also inside appended libraries);
// unknown names are refused with what exists; pipelines are cached by (file, entry, constants); a
// reflection table made for other sources is refused with the command that regenerates it; every
// shader, minified and renamed as the library build inlines it, still compiles to all of its pipelines.
import { afterAll, describe, expect, it } from "vitest";
import { KernelRegistry } from "../src/gpu/registry.ts";
import { ConfigError, ShaderCompileError } from "../src/errors.ts";
import { shaderReflection } from "../src/gpu/reflection.generated.ts";
import { shaderSources, type ShaderFile } from "../src/gpu/shaders.ts";
// The shaders the core loads on first use join shaderSources when their module loads (conv_pool.ts) or
// when the core loads them (the subgroup matmul's).
import "../src/kernels/conv_pool.ts";
import { loadSubgroupShader } from "../src/kernels.ts";
import { shippedReflection, shipShaders } from "../src/gpu/wgsl_mangle.ts";
import { reflectShaders } from "../scripts/reflect-shaders.mts";
import { gpuEngine } from "./gpu_helpers.ts";
import type { Engine } from "../src/engine.ts";

await loadSubgroupShader();

let engine: Engine | undefined;
afterAll(() => engine?.dispose());

const sources = {
  "bad.wgsl": "// bad.wgsl\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1, 1, 1) fn main() { y[0] = undefined_thing; }\n",
  "uses_bad_lib.wgsl": "// uses: lib/broken.wgsl\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1, 1, 1) fn main() { y[0] = helper(); }\n",
  "lib/broken.wgsl": "// a helper\nfn helper() -> f32 {\n  return 1.0 + true;\n}\n",
  "good.wgsl": "override WG: u32 = 4;\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(WG, 1, 1) fn main() { y[0] = 1.0; }\n",
} as Record<string, string>;
// The table is made the way `npm run reflect` makes src/gpu/reflection.generated.ts.
const reflection = reflectShaders(sources);

describe("kernel registry", () => {
  it("reports a compile error with file and line", async () => {
    engine ??= await gpuEngine();
    const r = new KernelRegistry(engine.device, sources, reflection);
    const err = await r.kernel("bad.wgsl" as ShaderFile, "main").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect((err as Error).message).toMatch(/^shaders\/bad\.wgsl:3:\d+: .*undefined_thing/);
    const lib = await r.kernel("uses_bad_lib.wgsl" as ShaderFile, "main").catch((e: unknown) => e);
    expect((lib as Error).message).toMatch(/^shaders\/lib\/broken\.wgsl:3:\d+: /);
  });

  it("refuses unknown entry points and overrides, names what exists, and caches pipelines", async () => {
    engine ??= await gpuEngine();
    const r = new KernelRegistry(engine.device, sources, reflection);
    await expect(r.kernel("good.wgsl" as ShaderFile, "nope")).rejects.toThrow(/has no compute entry point "nope"; it has main/);
    await expect(r.kernel("good.wgsl" as ShaderFile, "main", { TILE: 8 })).rejects.toThrow(ConfigError);
    await expect(r.kernel("good.wgsl" as ShaderFile, "main", { TILE: 8 })).rejects.toThrow(/has no override "TILE"; it has WG/);
    const a = await r.kernel("good.wgsl" as ShaderFile, "main", { WG: 8 });
    expect(a.workgroupSize).toEqual([8, 1, 1]);
    expect((await r.kernel("good.wgsl" as ShaderFile, "main")).workgroupSize).toEqual([4, 1, 1]); // the override's default
    expect(await r.kernel("good.wgsl" as ShaderFile, "main", { WG: 8 })).toBe(a);
    expect(await r.kernel("good.wgsl" as ShaderFile, "main", { WG: 16 })).not.toBe(a);
    expect(() => a.bindGroup(engine!.device, {})).toThrow(/binding "y" was not given a buffer/);
    expect(() => a.bindGroup(engine!.device, { y: r.placeholder, z: r.placeholder })).toThrow(/no binding named "z"/);
  });

  it("refuses a reflection table made for other sources, and says how to regenerate it", async () => {
    engine ??= await gpuEngine();
    const edited = { ...sources, "good.wgsl": sources["good.wgsl"]!.replace("y[0] = 1.0;", "y[0] = 2.0;") };
    const stale = new KernelRegistry(engine.device, edited, reflection);
    await expect(stale.kernel("good.wgsl" as ShaderFile, "main")).rejects.toThrow(/shaders\/good\.wgsl .*changed after its reflection was generated; run `npm run reflect`/);
    const missing = new KernelRegistry(engine.device, { ...sources, "new.wgsl": sources["good.wgsl"]! }, reflection);
    await expect(missing.kernel("new.wgsl" as ShaderFile, "main")).rejects.toThrow(/shaders\/new\.wgsl has no entry in the shader reflection table; run `npm run reflect`/);
    // Comments and layout are not part of the fingerprint: editing them leaves the table valid.
    const commented = { ...sources, "good.wgsl": `// a new comment\n${sources["good.wgsl"]!.replace("y[0] = 1.0;", "  y[0]  =  1.0; /* set */")}` };
    expect((await new KernelRegistry(engine.device, commented, reflection).kernel("good.wgsl" as ShaderFile, "main")).workgroupSize).toEqual([4, 1, 1]);
  });

  it("compiles every shader as the library build ships it, with each entry point's pipeline", async () => {
    engine ??= await gpuEngine();
    const device = engine.device;
    // The library's strings and table (vite.lib.config.ts): a minifier or renaming that broke the code fails here.
    const shipped = shipShaders(shaderSources);
    const r = new KernelRegistry(device, shipped.sources, shippedReflection(shaderReflection, shaderSources, shipped));
    const subgroups = device.features.has("subgroups");
    let pipelines = 0;
    for (const [file, { entries }] of Object.entries(shaderReflection)) {
      if (!subgroups && /^enable subgroups;/m.test(shaderSources[file]!)) continue; // needs the feature
      for (const entry of Object.keys(entries)) {
        await r.kernel(file as ShaderFile, entry);
        pipelines++;
      }
    }
    expect(pipelines).toBeGreaterThan(40);
  }, 120_000);
});
