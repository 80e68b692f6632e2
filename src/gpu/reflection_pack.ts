// The reflection table as the library build ships it: one line of text per kernel file and per entry
// point instead of the object literal of src/gpu/reflection.generated.ts, which the build replaces
// with unpackReflection(packReflection(table)) (vite.lib.config.ts); 0.4 kB less gzip in the core.
//
//   <file> <fingerprint> <override>[=<default: t, f or a number>],...
//    <entry point> <workgroup size x>,<y>,<z> <binding>:<number>[:u (uniform) or :r (read-only storage)],... [<member>:<f, i or u>,...]
//
// A uniform's members are scalars of 4 bytes (the reflector refuses others), so each lies 4 bytes after
// the one before and the struct is 4 bytes a member: offsets and size are not written (packReflection
// refuses a table where they are not so).
import type { EntryReflection, ReflectionTable, ShaderReflection } from "./wgsl_source.ts";

const BINDINGS = { u: "uniform", s: "storage", r: "read-only-storage" } as const;
const SCALARS = { f: "f32", i: "i32", u: "u32" } as const;

/** The table as text (build time). */
export function packReflection(table: ReflectionTable): string {
  const lines: string[] = [];
  for (const [file, r] of Object.entries(table)) {
    const overrides = Object.entries(r.overrides).map(([k, v]) => (v === null ? k : `${k}=${v === true ? "t" : v === false ? "f" : v}`));
    lines.push(`${file} ${r.fingerprint} ${overrides.join(",")}`);
    for (const [entry, e] of Object.entries(r.entries)) {
      let line = ` ${entry} ${e.workgroupSize.join(",")} ${e.bindings.map((b) => `${b.name}:${b.binding}${b.type === "storage" ? "" : `:${b.type[0]}`}`).join(",")}`;
      if (e.uniform) {
        const members = Object.entries(e.uniform.members);
        const where = `shaders/${file} ${entry}: uniform ${e.uniform.name}`;
        if (e.bindings.find((b) => b.type === "uniform")?.name !== e.uniform.name) throw new Error(`${where} is not its uniform binding`);
        members.forEach(([name, m], i) => {
          if (m.offset !== 4 * i) throw new Error(`${where}: member ${name} is at byte ${m.offset}, not ${4 * i}; the packed table assumes members 4 bytes apart`);
        });
        if (e.uniform.size !== 4 * members.length) throw new Error(`${where} is ${e.uniform.size} bytes, not 4 per member`);
        line += ` ${members.map(([name, m]) => `${name}:${m.type[0]}`).join(",")}`;
      }
      lines.push(line);
    }
  }
  return lines.join("\n");
}

/** The table from packReflection's text (run time, in the library build). */
export function unpackReflection(text: string): ReflectionTable {
  const table: Record<string, ShaderReflection> = {};
  const list = (s = "") => (s ? s.split(",").map((x) => x.split(/[:=]/)) : []);
  let file: ShaderReflection;
  for (const line of text.split("\n")) {
    const [a, b, c, d] = line.trim().split(" ") as [string, string, string?, string?];
    if (line[0] !== " ") {
      file = table[a] = { fingerprint: b, overrides: Object.fromEntries(list(c).map(([k, v]) => [k, v === undefined ? null : v === "t" || (v !== "f" && +v)])), entries: {} };
    } else {
      const bindings = list(c).map(([name, n, t = "s"]) => ({ name: name!, binding: +n!, type: BINDINGS[t as keyof typeof BINDINGS] }));
      const u = bindings.find((x) => x.type === "uniform");
      const members = list(d);
      const workgroupSize = b.split(",").map((x) => (+x >= 0 ? +x : x)) as EntryReflection["workgroupSize"];
      file!.entries[a] = { bindings, workgroupSize, ...(u && { uniform: { name: u.name, size: 4 * members.length, members: Object.fromEntries(members.map(([k, t], i) => [k, { offset: 4 * i, type: SCALARS[t as keyof typeof SCALARS] }])) } }) };
    }
  }
  return table;
}
