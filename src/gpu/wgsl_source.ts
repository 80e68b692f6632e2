// WGSL source handling shared by the build-time reflector (scripts/reflect-shaders.mts) and the runtime
// registry: a kernel's libraries appended, the line-keeping minifier, the reflection table's types, and
// the fingerprint that tells a table written for other sources.
import { ConfigError } from "../errors.ts";

/** One binding an entry point uses, as the bind group layout needs it. */
export interface BindingReflection {
  name: string;
  binding: number;
  type: "uniform" | "storage" | "read-only-storage";
}

/** An entry point's uniform (its variable's name): its struct's size in bytes and each member's offset and scalar type. */
export interface UniformReflection {
  name: string;
  size: number;
  members: Record<string, { offset: number; type: "f32" | "i32" | "u32" }>;
}

/** One compute entry point: its bindings in binding order, its uniform, and @workgroup_size (literals, or override names). */
export interface EntryReflection {
  bindings: BindingReflection[];
  uniform?: UniformReflection;
  workgroupSize: [number | string, number | string, number | string];
}

/** What the registry needs of one kernel file (its libraries appended). */
export interface ShaderReflection {
  /** fingerprint() of the assembled code the table was made from. */
  fingerprint: string;
  /** Every override, with its default when that is a literal (null: none, or an expression). */
  overrides: Record<string, number | boolean | null>;
  entries: Record<string, EntryReflection>;
}

export type ReflectionTable = Readonly<Record<string, ShaderReflection>>;

/** A kernel's code with its libraries appended, and where each library starts (1-based lines). */
export interface AssembledShader {
  code: string;
  libs: { file: string; firstLine: number; lines: number }[];
}

const USES = /^\/\/ uses:(.*)$/;

/** The file's own code plus the libraries its first line names (`// uses: lib/a.wgsl lib/b.wgsl`), appended. */
export function assemble(file: string, sources: Readonly<Record<string, string>>): AssembledShader {
  const own = sources[file];
  if (own === undefined) throw new ConfigError(`unknown shader file "${file}"; known: ${Object.keys(sources).join(", ")}`);
  const uses = USES.exec(own.split("\n")[0]!.trim())?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
  let code = own;
  const libs: AssembledShader["libs"] = [];
  for (const lib of uses) {
    const src = sources[lib];
    if (src === undefined) throw new ConfigError(`${file} uses "${lib}", which is not a known shader file`);
    libs.push({ file: lib, firstLine: code.split("\n").length + 1, lines: src.split("\n").length });
    code += "\n" + src;
  }
  return { code, libs };
}

/** Word characters (with `.`, so `1 .5` stays two tokens). */
const WORD = /[\w.]/;
/** The first and the later characters of WGSL's operators of two or three (`--`, `>=`, `->`, `&&`, `>>=`, `!=`) and of `//`, `/*`. */
const OPERATOR_FIRST = /[-+*/%&|^<>=!]/;
const OPERATOR_NEXT = /[-+*/&|<>=]/;

/**
 * WGSL without comments, indentation or blanks a token does not need, line for line, so compiler line
 * numbers stay true; a first `// uses:` line is kept. A blank stays only between two word characters or
 * where two operator characters would join into another operator (`a - -b`, `p & &q`). WGSL has no string
 * literals, so `//` always opens a comment, and it finds template lists (`array<f32, 4>`) without blanks.
 */
export function minifyWgsl(code: string): string {
  code = code.replace(/\r\n?/g, "\n");
  let out = "";
  let depth = 0; // block comments nest in WGSL
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!;
    const pair = code.slice(i, i + 2);
    if (pair === "/*") {
      depth++;
      i++;
    } else if (depth > 0 && pair === "*/") {
      if (--depth === 0) out += " ";
      i++;
    } else if (depth > 0) {
      if (c === "\n") out += c;
    } else if (pair === "//") {
      const end = code.indexOf("\n", i);
      i = (end < 0 ? code.length : end) - 1;
    } else out += c;
  }
  const lines = out.split("\n").map((l) => l.replace(/\s+/g, " ").trim().replace(/(.) (?=(.))/g, (m, a: string, b: string) => ((WORD.test(a) && WORD.test(b)) || (OPERATOR_FIRST.test(a) && OPERATOR_NEXT.test(b)) ? m : a)));
  const first = code.slice(0, code.indexOf("\n") >>> 0).trim();
  if (USES.test(first)) lines[0] = first;
  return lines.join("\n");
}

/**
 * FNV-1a of the code without comments or blanks: comments and layout may change without making the
 * table stale. Every blank goes, even one that separates two words, and the tail of a nested block
 * comment stays: this tells a table made for other code, cheaply enough for the core bundle (which need
 * not carry the minifier); tests/reflection.test.ts compares the table with the shaders themselves.
 */
export function fingerprint(code: string): string {
  const text = code.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, "").replace(/\s+/g, "");
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}
