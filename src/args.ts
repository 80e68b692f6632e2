// Argument checks shared by the public entry points: each throws an EngineError that names the argument,
// what it got and what it needs, so a wrong call never reaches a TypeError deep inside.
import { ConfigError, ShapeError } from "./errors.ts";

/** A short description of any value for messages: `"fast"`, `NaN`, `null`, `an ArrayBuffer`, `[2, -1]`. */
export function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "bigint") return `${v}n (a BigInt)`;
  if (typeof v === "symbol" || typeof v === "function") return `a ${typeof v}`;
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return v.length > 8 ? `an array of ${v.length}` : `[${v.map(shown).join(", ")}]`;
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return ctor && ctor !== "Object" ? `a${/^[AEIOU]/.test(ctor) ? "n" : ""} ${ctor}` : "an object";
}

/**
 * An options object: undefined and null give {}; anything else must be a plain object whose keys are
 * among `known` (a misspelt option would otherwise be ignored without a word).
 */
export function optionsOf<T extends object>(o: unknown, what: string, known: readonly string[]): Partial<T> {
  if (o === undefined || o === null) return {};
  if (typeof o !== "object" || Array.isArray(o) || ArrayBuffer.isView(o)) throw new ConfigError(`${what}: options must be an object { ${known.join(", ")} }, got ${shown(o)}`);
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) throw new ConfigError(`${what}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}; the options are ${known.join(", ")}`);
  return o as Partial<T>;
}

/** An optional boolean option. */
export function flag(v: unknown, what: string): boolean | undefined {
  if (v !== undefined && typeof v !== "boolean") throw new ConfigError(`${what} must be true or false, got ${shown(v)}`);
  return v;
}

/** An optional option that takes one of a few names. */
export function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[]): T | undefined {
  if (v !== undefined && !allowed.includes(v as T)) throw new ConfigError(`${what} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${shown(v)}`);
  return v as T | undefined;
}

/** A finite number that passes `ok` (`need` says what ok means, e.g. "in [0, 1)"). */
export function numberIn(v: unknown, what: string, ok: (x: number) => boolean, need: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new ConfigError(`${what} must be ${need}, got ${shown(v)}`);
  return v;
}

/** A shape: a list of positive integers; returns its element count. `what` names it, e.g. "tensor: shape". */
export function checkShape(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== "number" || !Number.isInteger(d) || d < 1)) {
    throw new ShapeError(`${what} must be a list of positive integers, got ${shown(shape)}`);
  }
  return shape.reduce((a: number, b: number) => a * b, 1);
}
