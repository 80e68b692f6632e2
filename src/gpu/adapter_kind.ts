// What device acquisition in every runtime (device.ts) and its Node-only half (node.ts) both need to know
// of adapters, here so that neither module imports the other: device.ts loads node.ts at run time.

/** Adapter names that mark a CPU implementation. */
export const CPU_ARCHITECTURES = /swiftshader|llvmpipe|lavapipe|software|warp|cpu/i;

/** How to look for an adapter. */
export interface AdapterRequest {
  powerPreference?: GPUPowerPreference;
  /** In Node: "auto" (a hardware GPU, then lavapipe, then SwiftShader) or one of them explicitly. */
  adapter?: "auto" | "hardware" | "lavapipe" | "swiftshader";
}
