// The committed shader reflection table (src/gpu/reflection.generated.ts) is what wgsl_reflect reports
// for the shaders on disk today; the build-time reflector refuses what the registry cannot bind; the WGSL
// minifier of the library build keeps line numbers and the table's fingerprints; its renaming of the
// shaders' identifiers leaves what the registry reads of them as it was, and so does the packing of the
// table as text.
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { WgslReflect } from "wgsl_reflect";
import { REFLECT_COMMAND, TABLE_PATH, reflectShader, reflectShaders } from "../scripts/reflect-shaders.mts";
import { shaderReflection } from "../src/gpu/reflection.generated.ts";
import { shaderSources } from "../src/gpu/shaders.ts";
// The shaders the core loads on first use join shaderSources when their module loads (conv_pool.ts) or
// when the core loads them (the subgroup matmul's).
import "../src/kernels/conv_pool.ts";
import { loadSubgroupShader } from "../src/kernels.ts";
await loadSubgroupShader();
import { packReflection, unpackReflection } from "../src/gpu/reflection_pack.ts";
import { mangleWgsl, shippedReflection, shipShaders, wgslRenaming } from "../src/gpu/wgsl_mangle.ts";
import { assemble, fingerprint, minifyWgsl, type ReflectionTable, type ShaderReflection } from "../src/gpu/wgsl_source.ts";

const STALE = `${TABLE_PATH} does not match the shaders: run \`${REFLECT_COMMAND}\` and commit the result`;

describe("shader reflection table", () => {
  it("equals what wgsl_reflect reports for every shader on disk", () => {
    const fresh = reflectShaders(shaderSources);
    expect(Object.keys(shaderReflection).sort(), STALE).toEqual(Object.keys(fresh).sort());
    for (const file of Object.keys(fresh)) expect(shaderReflection[file], `${STALE} (shaders/${file})`).toEqual(fresh[file]);
  });

  it("covers every .wgsl file in shaders/", () => {
    const dir = new URL("../shaders/", import.meta.url);
    const onDisk = [...readdirSync(dir).filter((f) => f.endsWith(".wgsl")), ...readdirSync(new URL("lib/", dir)).map((f) => `lib/${f}`)];
    expect(Object.keys(shaderSources).sort(), "add the new file to src/gpu/shaders.ts, then run " + REFLECT_COMMAND).toEqual(onDisk.sort());
  });

  it("agrees with wgsl_reflect on one kernel, read directly", () => {
    const r = new WgslReflect(assemble("matmul.wgsl", shaderSources).code);
    const fn = r.entry.compute.find((f) => f.name === "matmul_tiled")!;
    const entry = shaderReflection["matmul.wgsl"]!.entries["matmul_tiled"]!;
    expect(entry.bindings.map((b) => [b.name, b.binding])).toEqual(fn.resources.map((v) => [v.name, v.binding]).sort((a, b) => Number(a[1]) - Number(b[1])));
    const params = r.getStructInfo("Params")!;
    expect(entry.uniform!.size).toBe(params.size);
    expect(Object.entries(entry.uniform!.members).map(([name, m]) => [name, m.offset, m.type])).toEqual(params.members.map((m) => [m.name, m.offset, m.type.name]));
    expect(entry.workgroupSize).toEqual(["WG_X", "WG_Y", 1]);
    expect(shaderReflection["matmul.wgsl"]!.overrides).toMatchObject({ ACCUMULATE: false });
  });
});

describe("build-time reflector", () => {
  const kernel = (body: string) => ({ "k.wgsl": body });
  it("refuses what the registry cannot bind, naming the file", () => {
    expect(() => reflectShader("k.wgsl", kernel("@group(1) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1, 1, 1) fn main() { y[0] = 1.0; }"))).toThrow(/shaders\/k\.wgsl: y is in group 1/);
    expect(() => reflectShader("k.wgsl", kernel("struct P { v: vec4f }\n@group(0) @binding(0) var<uniform> p: P;\n@group(0) @binding(1) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(1, 1, 1) fn main() { y[0] = p.v.x; }"))).toThrow(/uniform P\.v is vec4f/);
    expect(() => reflectShader("k.wgsl", kernel("const N = 4u;\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(N, 1, 1) fn main() { y[0] = 1.0; }"))).toThrow(/has "N", neither a literal nor an override/);
  });

  it("keeps override defaults, literal workgroup sizes and read-only storage", () => {
    const r = reflectShader("k.wgsl", kernel("override A: bool = true;\noverride B: u32;\noverride C: f32 = 0.5f;\n@group(0) @binding(2) var<storage, read> x: array<f32>;\n@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n@compute @workgroup_size(64) fn main() { if (A) { y[0] = x[0] * C + f32(B); } }"));
    expect(r.overrides).toEqual({ A: true, B: null, C: 0.5 });
    expect(r.entries["main"]).toEqual({ bindings: [{ name: "y", binding: 0, type: "storage" }, { name: "x", binding: 2, type: "read-only-storage" }], workgroupSize: [64, 1, 1] });
  });
});

describe("WGSL minifier", () => {
  it("keeps every line and the uses line, drops comments and layout, and leaves fingerprints alone", () => {
    for (const [file, src] of Object.entries(shaderSources)) {
      const min = minifyWgsl(src);
      expect(min.split("\n").length, file).toBe(src.split("\n").length);
      expect(minifyWgsl(min), file).toBe(min);
      expect(min, file).not.toMatch(/\/\/(?! uses:)|\/\*|^[ \t]|[ \t]$|[ \t]{2}/m);
      if (src.startsWith("// uses:")) expect(min.split("\n")[0]).toBe(src.split("\n")[0]);
    }
    const minified = Object.fromEntries(Object.entries(shaderSources).map(([f, s]) => [f, minifyWgsl(s)]));
    for (const file of Object.keys(shaderReflection)) expect(fingerprint(assemble(file, minified).code), file).toBe(shaderReflection[file]!.fingerprint);
  });

  it("handles nested block comments without merging tokens", () => {
    expect(minifyWgsl("let a/* x /* y */ z */=1;\r\nlet b = 2; // c /* d\nlet c = 3;")).toBe("let a=1;\nlet b=2;\nlet c=3;");
    expect(minifyWgsl("a /* one\ntwo */ b")).toBe("a\nb");
    expect(minifyWgsl("let a/**/b")).toBe("let a b");
  });

  it("drops the blanks around punctuation, keeping those that separate tokens", () => {
    const cases: [string, string][] = [
      ["enable subgroups;", "enable subgroups;"],
      ["@group(0) @binding(1) var<storage, read_write> y: array<vec4f, 4>;", "@group(0)@binding(1)var<storage,read_write>y:array<vec4f,4>;"],
      ["fn f(a: f32) -> f32 { return a - -1.0; }", "fn f(a:f32)->f32{return a- -1.0;}"],
      ["let b = a >> 2u << 1u; let c = x >= y && !(x != y);", "let b=a>>2u<<1u;let c=x>=y&&!(x!=y);"],
      ["var t: array<f32, 4> = array(1.0, 2e-3, -3.0, .5);", "var t:array<f32,4> =array(1.0,2e-3,-3.0,.5);"],
      ["x = a < b; y = p & &q; z = a / *p; w = 1 .x; i --; j -= - 1;", "x=a<b;y=p& &q;z=a/ *p;w=1 .x;i--;j-= -1;"],
    ];
    for (const [src, min] of cases) {
      expect(minifyWgsl(src), src).toBe(min);
      expect(minifyWgsl(min), min).toBe(min);
    }
  });

  it("leaves what wgsl_reflect reads of every kernel unchanged", () => {
    const minified = Object.fromEntries(Object.entries(shaderSources).map(([f, s]) => [f, minifyWgsl(s)]));
    for (const file of Object.keys(shaderReflection)) expect(reflectShader(file, minified), file).toEqual(reflectShader(file, shaderSources));
  });
});

describe("WGSL renaming of the library build", () => {
  const shipped = shipShaders(shaderSources);
  const back = new Map([...shipped.renaming].map(([a, b]) => [b, a]));
  /** A reflection of shipped code with the sources' names, as the table has them. */
  const withSourceNames = (r: ShaderReflection): ShaderReflection => ({
    ...r,
    entries: Object.fromEntries(
      Object.entries(r.entries).map(([name, e]) => [
        name,
        {
          ...e,
          bindings: e.bindings.map((b) => ({ ...b, name: back.get(b.name) ?? b.name })),
          ...(e.uniform ? { uniform: { ...e.uniform, name: back.get(e.uniform.name) ?? e.uniform.name, members: Object.fromEntries(Object.entries(e.uniform.members).map(([m, v]) => [back.get(m) ?? m, v])) } } : {}),
        },
      ]),
    ),
  });

  it("keeps every line, entry point and override; every kernel reflects to the table's layouts under the renaming", () => {
    const table = shippedReflection(shaderReflection, shaderSources, shipped);
    for (const [file, src] of Object.entries(shaderSources)) {
      expect(shipped.sources[file]!.split("\n").length, file).toBe(src.split("\n").length);
      expect(shipped.sources[file]!.length, file).toBeLessThan(minifyWgsl(src).length);
    }
    for (const file of Object.keys(shaderReflection)) {
      const r = reflectShader(file, shipped.sources);
      expect(r.fingerprint, file).toBe(table[file]!.fingerprint);
      expect(r.fingerprint, file).not.toBe(shaderReflection[file]!.fingerprint);
      expect(withSourceNames(r), file).toEqual({ ...shaderReflection[file], fingerprint: r.fingerprint });
    }
    // Binding variables and uniform members are renamed too (the registry goes by the table's names, numbers and offsets).
    expect(shipped.renaming.get("params")).toMatch(/^\w{1,2}$/);
    expect(shipped.renaming.get("k_chunk")).toMatch(/^\w{1,2}$/);
  });

  it("renames declarations and their uses alike in a kernel and its libraries, and nothing else", () => {
    const sources = {
      "k.wgsl": [
        "// uses: lib/l.wgsl",
        "enable subgroups;",
        "struct Cell{x:u32,count:u32}",
        "@group(0)@binding(0)var<storage,read_write>out:array<u32>;",
        "override WG:u32=4;",
        "var<workgroup>scratch:array<u32,WG>;",
        "@compute@workgroup_size(WG)",
        "fn main(@builtin(global_invocation_id)global_invocation_id:vec3u){let count=helper(global_invocation_id.x);var c=Cell(global_invocation_id.x,count);scratch[c.x]=c.count+max(c.x,1u);out[count]=scratch[0];}",
      ].join("\n"),
      "lib/l.wgsl": "fn helper(subgroups:u32)->u32{let v=vec2u(subgroups,1u);return v.x+v.y+u32(frexp(1.5f).exp);}",
    };
    const renaming = wgslRenaming(sources);
    expect([...renaming.keys()].sort()).toEqual(["Cell", "c", "count", "global_invocation_id", "helper", "out", "scratch", "subgroups", "v"]);
    const n = (name: string) => renaming.get(name)!;
    const out = mangleWgsl(sources, renaming);
    expect(out["k.wgsl"]!.split("\n")).toEqual([
      "// uses: lib/l.wgsl",
      "enable subgroups;",
      `struct ${n("Cell")}{x:u32,${n("count")}:u32}`,
      `@group(0)@binding(0)var<storage,read_write>${n("out")}:array<u32>;`,
      "override WG:u32=4;",
      `var<workgroup>${n("scratch")}:array<u32,WG>;`,
      "@compute@workgroup_size(WG)",
      `fn main(@builtin(global_invocation_id)${n("global_invocation_id")}:vec3u){let ${n("count")}=${n("helper")}(${n("global_invocation_id")}.x);var ${n("c")}=${n("Cell")}(${n("global_invocation_id")}.x,${n("count")});${n("scratch")}[${n("c")}.x]=${n("c")}.${n("count")}+max(${n("c")}.x,1u);${n("out")}[${n("count")}]=${n("scratch")}[0];}`,
    ]);
    expect(out["lib/l.wgsl"]).toBe(`fn ${n("helper")}(${n("subgroups")}:u32)->u32{let ${n("v")}=vec2u(${n("subgroups")},1u);return ${n("v")}.x+${n("v")}.y+u32(frexp(1.5f).exp);}`);
    // Members are renamed with the same map (a namespace of their own), but not a vector's components or a builtin's fields.
    // New names are distinct, short, and none a word the code uses otherwise (max, x, u32, WG …) or WGSL reserves.
    const fresh = [...renaming.values()];
    expect(new Set(fresh).size).toBe(fresh.length);
    for (const name of fresh) expect(["max", "x", "y", "u32", "vec2u", "vec3u", "WG", "main", "array", "frexp", "exp", "do", "as", "of", "fn", "if"]).not.toContain(name);
    expect(fresh.every((name) => name.length === 1)).toBe(true);
  });

  it("refuses a table made for other sources", () => {
    const edited = { ...shaderSources, "activation.wgsl": shaderSources["activation.wgsl"]!.replace("g += dx[i];", "g -= dx[i];") };
    expect(() => shippedReflection(shaderReflection, edited, shipShaders(edited))).toThrow(/shaders\/activation\.wgsl .*changed after its reflection was generated; run `npm run reflect`/);
  });
});

describe("packed reflection table of the library build", () => {
  it("unpacks to the table it was packed from, for the sources' table and the shipped one", () => {
    expect(unpackReflection(packReflection(shaderReflection))).toEqual(shaderReflection);
    const shipped = shippedReflection(shaderReflection, shaderSources, shipShaders(shaderSources));
    expect(unpackReflection(packReflection(shipped))).toEqual(shipped);
  });

  it("keeps what the shaders do not have today: no overrides, defaults of every kind, no bindings, read-only storage", () => {
    const table: ReflectionTable = {
      "a.wgsl": { fingerprint: "00000000", overrides: {}, entries: { main: { bindings: [], workgroupSize: [1, 1, 1] } } },
      "lib2/b.wgsl": {
        fingerprint: "ffffffff",
        overrides: { A: true, B: null, C: -0.5, D: 1e-7, E: 0 },
        entries: {
          one: { bindings: [{ name: "y", binding: 3, type: "read-only-storage" }, { name: "p", binding: 7, type: "uniform" }], uniform: { name: "p", size: 8, members: { k: { offset: 0, type: "i32" }, lr: { offset: 4, type: "f32" } } }, workgroupSize: ["E", 2, "C"] },
          two: { bindings: [{ name: "z", binding: 0, type: "storage" }], workgroupSize: [256, 1, 1] },
        },
      },
    };
    expect(unpackReflection(packReflection(table))).toEqual(table);
  });

  it("refuses a uniform whose members are not 4 bytes apart", () => {
    const entry = { bindings: [{ name: "p", binding: 0, type: "uniform" as const }], uniform: { name: "p", size: 16, members: { a: { offset: 0, type: "u32" as const }, b: { offset: 8, type: "u32" as const } } }, workgroupSize: [1, 1, 1] as [number, number, number] };
    expect(() => packReflection({ "k.wgsl": { fingerprint: "0", overrides: {}, entries: { main: entry } } })).toThrow(/shaders\/k\.wgsl main: uniform p: member b is at byte 8, not 4/);
    expect(() => packReflection({ "k.wgsl": { fingerprint: "0", overrides: {}, entries: { main: { ...entry, uniform: { ...entry.uniform, members: { a: entry.uniform.members.a } } } } } })).toThrow(/uniform p is 16 bytes, not 4 per member/);
  });
});
