// Build-time renaming of the shaders' own identifiers (vite.lib.config.ts, after minifyWgsl): every
// function, parameter, local, constant, struct, struct member, binding and workgroup variable gets a
// short name, the same one in every file (so a kernel and the libraries appended to it agree), the most
// used first. What the TypeScript side names in WGSL stays: entry points and overrides (given to
// createComputePipeline by name). Binding variables and uniform members may be renamed: the registry
// binds and packs by the reflection table's binding numbers and offsets, which keep the sources' names.
// Lines stay where they are, so compiler line numbers still point into shaders/; a compile error in the
// library build names the new identifiers. Not part of the core bundle: only the build and the tests
// import this.
import { assemble, fingerprint, minifyWgsl, type ReflectionTable, type ShaderReflection } from "./wgsl_source.ts";

/** Words no identifier may be: WGSL's keywords and reserved words (a new name is checked against them). */
const RESERVED = new Set(
  (
    "alias break case const const_assert continue continuing default diagnostic discard else enable false fn for if let loop override requires return struct switch true var while " +
    "NULL Self abstract active alignas alignof as asm asm_fragment async attribute auto await become binding_array cast catch class co_await co_return co_yield coherent " +
    "column_major common compile compile_fragment concept const_cast consteval constexpr constinit crate debugger decltype delete demote demote_to_helper do dynamic_cast " +
    "enum explicit export extends extern external fallthrough filter final finally friend from fxgroup get goto groupshared highp impl implements import inline instanceof " +
    "interface layout lowp macro macro_rules match mediump meta mod module move mut mutable namespace new nil noexcept noinline nointerpolation non_coherent noncoherent " +
    "noperspective null nullptr of operator package packoffset partition pass patch pixelfragment precise precision premerge priv protected pub public readonly ref regardless " +
    "register reinterpret_cast require resource restrict self set shared sizeof smooth snorm static static_assert static_cast std subroutine super target template this " +
    "thread_local throw trait try type typedef typeid typename typeof union unless unorm unsafe unsized use using varying virtual volatile wgsl where with writeonly yield"
  ).split(" "),
);

interface Token {
  text: string;
  start: number;
  /** An identifier (not a number, operator or comment). */
  ident: boolean;
}

const TOKEN = /\/\/[^\n]*|\s+|(0[xX][\da-fA-F]*\.?[\da-fA-F]*(?:[pP][+-]?\d+)?[fhiu]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fhiu]?)|([A-Za-z_]\w*)|[\s\S]/gy;

function tokens(code: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(code); m; m = TOKEN.exec(code)) {
    const text = m[0];
    if (/^\s/.test(text) || text.startsWith("//")) continue;
    if (text.charCodeAt(0) > 127) throw new Error(`mangleWgsl: "${text}" at ${m.index}: only ASCII identifiers are handled`);
    out.push({ text, start: m.index, ident: m[2] !== undefined });
  }
  return out;
}

/** How each identifier token of one file is used. */
interface FileAnalysis {
  code: string;
  tokens: Token[];
  /** Indexes of the identifier tokens a renaming applies to, but members (not attributes, builtin values, directives). */
  renamable: number[];
  /** Names this file declares (functions, parameters, locals, constants, structs, aliases, module-scope variables). */
  declared: Set<string>;
  /** Names the TypeScript side gives the GPU: entry points and overrides. */
  kept: Set<string>;
  /** Struct members this file declares. */
  members: Set<string>;
  /** Indexes of the member tokens (declarations and those after `.`) a renaming applies to. */
  accesses: number[];
}

/** Fields of the builtins' result structs (frexp, modf, atomicCompareExchangeWeak). */
const BUILTIN_FIELDS = new Set(["fract", "exp", "whole", "old_value", "exchanged"]);

/**
 * Whether `.name` is a member of a struct of the code's own wherever it appears: not a vector's
 * components (`v.xy`, `c.rgba`) nor a builtin's field. Other members are renamed, and only they.
 */
function memberName(name: string): boolean {
  return !/^([xyzw]{1,4}|[rgba]{1,4})$/.test(name) && !BUILTIN_FIELDS.has(name);
}

const ENTRY_STAGES = new Set(["compute", "vertex", "fragment"]);

function analyse(code: string): FileAnalysis {
  const toks = tokens(code);
  const renamable: number[] = [];
  const declared = new Set<string>();
  const kept = new Set<string>();
  const members = new Set<string>();
  const accesses: number[] = [];
  let depth = 0; // braces
  let attributes: string[] = []; // attribute names since the last module-scope declaration
  let structDepth = -1; // the brace depth inside a struct body, or -1
  let params = -1; // the paren depth of a function's parameter list, or -1
  let parens = 0;
  let skipUntil = -1; // a token index up to which identifiers are not renamable
  let pendingFn = false;
  let pendingStruct = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    const prev = toks[i - 1]?.text;
    const next = toks[i + 1]?.text;
    if (!t.ident) {
      if (t.text === "{") {
        depth++;
        if (pendingStruct) structDepth = depth;
        pendingStruct = false;
      } else if (t.text === "}") {
        if (depth === structDepth) structDepth = -1;
        if (--depth === 0) attributes = [];
      } else if (t.text === "(") {
        parens++;
        if (pendingFn) params = parens;
        pendingFn = false;
      } else if (t.text === ")") {
        if (parens === params) params = -1;
        parens--;
      } else if (t.text === ";" && depth === 0) attributes = [];
      continue;
    }
    if (i <= skipUntil) continue;
    if (prev === ".") {
      if (memberName(t.text)) accesses.push(i);
      continue;
    }
    if (prev === "@") {
      // An attribute: builtin value names and diagnostic rule names are not identifiers of the code.
      attributes.push(t.text);
      if ((t.text === "builtin" || t.text === "diagnostic" || t.text === "interpolate") && next === "(") skipUntil = closing(toks, i + 1);
      continue;
    }
    if (depth === 0 && parens === 0 && (t.text === "enable" || t.text === "requires" || t.text === "diagnostic")) {
      skipUntil = toks.findIndex((u, j) => j > i && u.text === ";");
      continue;
    }
    if (structDepth > 0 && depth === structDepth && next === ":") {
      if (memberName(t.text)) {
        members.add(t.text);
        accesses.push(i);
      }
      continue;
    }
    const keyword = prev !== undefined && toks[i - 1]!.ident ? prev : prev === ">" ? keywordBeforeTemplate(toks, i - 1) : undefined;
    if (t.text === "fn") {
      pendingFn = true;
      const name = toks[i + 1]!.text;
      if (attributes.some((a) => ENTRY_STAGES.has(a))) kept.add(name);
      attributes = [];
    } else if (t.text === "struct") pendingStruct = true;
    if (keyword === "override") kept.add(t.text);
    else if (keyword === "fn" || keyword === "let" || keyword === "var" || keyword === "const" || keyword === "struct" || keyword === "alias") declared.add(t.text);
    else if (params > 0 && parens === params && next === ":" && (prev === "(" || prev === "," || prev === ")")) declared.add(t.text);
    renamable.push(i);
  }
  return { code, tokens: toks, renamable, declared, kept, members, accesses };
}

/** The index of the `)` that closes the `(` at `open`. */
function closing(toks: Token[], open: number): number {
  let d = 0;
  for (let j = open; j < toks.length; j++) {
    if (toks[j]!.text === "(") d++;
    else if (toks[j]!.text === ")" && --d === 0) return j;
  }
  return toks.length;
}

/** The keyword before a template list that ends at `close` (`var<storage, read>`), if any. */
function keywordBeforeTemplate(toks: Token[], close: number): string | undefined {
  let d = 0;
  for (let j = close; j >= 0; j--) {
    if (toks[j]!.text === ">") d++;
    else if (toks[j]!.text === "<" && --d === 0) return toks[j - 1]?.text;
    else if (toks[j]!.text === ";" || toks[j]!.text === "{" || toks[j]!.text === "}") return undefined;
  }
  return undefined;
}

/** Short names in order: a…z, A…Z, then two characters and more. */
function* names(): Generator<string> {
  const first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const rest = first + "0123456789_";
  for (let len = 1; ; len++) {
    const idx = new Array<number>(len).fill(0);
    for (;;) {
      yield first[idx[0]!] + idx.slice(1).map((k) => rest[k]).join("");
      let p = len - 1;
      while (p >= 0 && ++idx[p]! === (p === 0 ? first.length : rest.length)) idx[p--] = 0;
      if (p < 0) break;
    }
  }
}

/** The renaming for a set of (minified) sources: old name → new name. */
export function wgslRenaming(sources: Readonly<Record<string, string>>): Map<string, string> {
  const files = Object.values(sources).map(analyse);
  const kept = new Set(files.flatMap((f) => [...f.kept]));
  const declared = new Set(files.flatMap((f) => [...f.declared, ...f.members]).filter((n) => !kept.has(n)));
  // Every name left as it is anywhere (builtins, types, members, kept names) is not free for a new name.
  const taken = new Set<string>();
  const uses = new Map<string, number>();
  for (const f of files) {
    const renamable = new Set([...f.renamable, ...f.accesses]);
    f.tokens.forEach((t, i) => {
      if (!t.ident) return;
      if (renamable.has(i) && declared.has(t.text)) uses.set(t.text, (uses.get(t.text) ?? 0) + 1);
      else taken.add(t.text);
    });
  }
  const renaming = new Map<string, string>();
  const fresh = names();
  for (const [name] of [...uses].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    let n = fresh.next().value!;
    while (taken.has(n) || RESERVED.has(n)) n = fresh.next().value!;
    renaming.set(name, n);
  }
  return renaming;
}

/** Every source with its own identifiers renamed (see wgslRenaming); the sources should be minified. */
export function mangleWgsl(sources: Readonly<Record<string, string>>, renaming = wgslRenaming(sources)): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [file, code] of Object.entries(sources)) {
    const f = analyse(code);
    let text = "";
    let at = 0;
    for (const i of [...f.renamable, ...f.accesses].sort((a, b) => a - b)) {
      const t = f.tokens[i]!;
      const n = renaming.get(t.text);
      if (n === undefined) continue;
      text += code.slice(at, t.start) + n;
      at = t.start + t.text.length;
    }
    out[file] = text + code.slice(at);
  }
  return out;
}

/** The shaders as the library build inlines them: minified, then renamed. */
export interface ShippedShaders {
  sources: Record<string, string>;
  /** Old name → new name. */
  renaming: Map<string, string>;
}

export function shipShaders(sources: Readonly<Record<string, string>>): ShippedShaders {
  const minified = Object.fromEntries(Object.entries(sources).map(([f, s]) => [f, minifyWgsl(s)]));
  const renaming = wgslRenaming(minified);
  return { sources: mangleWgsl(minified, renaming), renaming };
}

/**
 * The reflection table for shipped shaders: the same layouts (by the sources' names, which the
 * TypeScript side uses), with each fingerprint that of the shipped code, so the registry's check that
 * the table fits the code holds in the library build as it does on the sources. A table that does not
 * fit the sources is refused, as the registry would refuse it.
 */
export function shippedReflection(table: ReflectionTable, sources: Readonly<Record<string, string>>, shipped: ShippedShaders): ReflectionTable {
  const out: Record<string, ShaderReflection> = {};
  for (const [file, r] of Object.entries(table)) {
    if (!(file in sources)) throw new Error(`shaders/${file} is in the shader reflection table but not among the sources`);
    if (fingerprint(assemble(file, sources).code) !== r.fingerprint) throw new Error(`shaders/${file} (or a library it uses) changed after its reflection was generated; run \`npm run reflect\``);
    out[file] = { ...r, fingerprint: fingerprint(assemble(file, shipped.sources).code) };
  }
  return out;
}
