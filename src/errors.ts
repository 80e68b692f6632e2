// Typed error hierarchy for the engine, so callers can tell bad data from bad config or GPU trouble.

/** Base class of every error the engine throws on purpose. */
export class EngineError extends Error {
  // Spelled out, not new.target.name: an app's minifier renames classes, and the name is what users see.
  override name = "EngineError";
}

/** Bad input data or files: malformed, truncated, missing or out-of-range contents. */
export class DataError extends EngineError {
  override name = "DataError";
}

/** Tensor shapes that do not fit together (wrong rank, mismatched dimensions). */
export class ShapeError extends EngineError {
  override name = "ShapeError";
}

/** Unknown names or invalid options in a model, layer, optimiser or run configuration. */
export class ConfigError extends EngineError {
  override name = "ConfigError";
}

/** WebGPU trouble: no adapter, device creation or loss, or a validation/out-of-memory error. */
export class GpuError extends EngineError {
  override name = "GpuError";
}

/** A WGSL shader that does not compile; the message carries file, line, column and the compiler's words. */
export class ShaderCompileError extends GpuError {
  override name = "ShaderCompileError";
}

/** Training produced a non-finite loss; the message names the first layer whose output went bad. */
export class DivergenceError extends DataError {
  override name = "DivergenceError";
}
