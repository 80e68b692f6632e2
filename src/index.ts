// Public entry point of the library.
// The shaders and their reflection table come first, for their place in the bundle, not for effects: the
// library build then holds its data (40 kB of WGSL, the table) in one stretch before all of its code,
// which gzip packs about 0.55 kB smaller than the data between the first few modules and the rest.
import "./gpu/shaders.ts";
import "./gpu/reflection.generated.ts";
export { Engine, type EngineOptions } from "./engine.ts";
export { Tensor, type DType } from "./engine.ts";
export * from "./errors.ts";
export { acquireGpu, type AdapterReport, type Gpu, type GpuOptions } from "./gpu/device.ts";
export { KernelRegistry, Kernel, Dispatch } from "./gpu/registry.ts";
export type { Activation, Augment, MatmulVariant } from "./kernels.ts";
export {
  Conv2D,
  DepthwiseConv2D,
  MaxPooling2D,
  AveragePooling2D,
  GlobalAveragePooling2D,
  Flatten,
  Reshape,
  Dense,
  Dropout,
  Activation as ActivationLayer,
  Add,
  Multiply,
  Concatenate,
  BatchNormalization,
  LayerNormalization,
  Layer,
} from "./graph/layers.ts";
export { Input, SymbolicTensor } from "./graph/graph.ts";
export { Model, Sequential, type CompileOptions, type LossName } from "./model/model.ts";
export type { FitOptions, History, Callbacks } from "./train/fit.ts";
export type { Logs } from "./train/metrics.ts";
export type { KernelTime } from "./train/diagnostics.ts";
export type { OptimizerConfig, LearningRate } from "./train/optimizer.ts";
export type { Plan, MemoryReport } from "./plan/plan.ts";
