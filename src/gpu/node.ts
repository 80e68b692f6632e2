// The Node-only half of device acquisition and tuning: Dawn (the "webgpu" package), the Vulkan driver
// search, and the tuning cache file. device.ts loads it in Node only, by a specifier no bundler follows,
// so a browser build holds none of it (the library ships it as dist/lib/node.js beside the core).
import { GpuError } from "../errors.ts";
import { CPU_ARCHITECTURES, type AdapterRequest } from "./adapter_kind.ts";

const LAVAPIPE_ICDS = ["/usr/share/vulkan/icd.d/lvp_icd.json", "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json", "/usr/share/vulkan/icd.d/lvp_icd.aarch64.json"];
const SWIFTSHADER_ICDS = ["/usr/lib/chromium/vk_swiftshader_icd.json", "/usr/lib/chromium-browser/vk_swiftshader_icd.json", "/opt/google/chrome/vk_swiftshader_icd.json"];
const INSTALL_HINT =
  "Install a GPU driver, or a CPU Vulkan driver: on Debian 12, `bash .ci/install-system.sh` (adds bookworm-backports " +
  "and runs `apt-get install -t bookworm-backports mesa-vulkan-drivers`; Mesa >= 24 is needed), on Ubuntu 24.04+ " +
  "`apt-get install mesa-vulkan-drivers`, or `apt-get install chromium` for SwiftShader. " +
  "To force one, set VK_ICD_FILENAMES to its .json file.";

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

/**
 * Dawn, resolved from this module's location and imported by file URL: no import of a package name or
 * of node:* is left for a bundler to find, so browser builds neither bundle nor warn about Node code.
 */
async function loadDawn(): Promise<DawnModule> {
  try {
    const { createRequire } = process.getBuiltinModule("node:module");
    const { pathToFileURL } = process.getBuiltinModule("node:url");
    const entry = createRequire(import.meta.url).resolve("webgpu");
    return (await import(/* @vite-ignore */ pathToFileURL(entry).href)) as DawnModule;
  } catch (e) {
    throw new GpuError(`WebGPU is not available in this runtime and the "webgpu" package (Dawn for Node) could not be loaded: ${(e as Error).message.split("\n")[0]}. Run \`npm install webgpu\`.`);
  }
}

/** Tries Vulkan drivers in order in Node; returns the first adapter found and what it tried. */
export async function nodeAdapter(opts: AdapterRequest): Promise<{ adapter: GPUAdapter; instance: GPU; icd?: string }> {
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals);
  const fs = process.getBuiltinModule("node:fs");
  const userIcd = process.env.VK_ICD_FILENAMES;
  const choice = opts.adapter ?? "auto";
  const candidates: (string | undefined)[] = [];
  if (choice === "auto" || choice === "hardware") candidates.push(userIcd); // the loader's own search, or the user's pick
  if (choice === "auto" || choice === "lavapipe") candidates.push(...LAVAPIPE_ICDS.filter((p) => fs.existsSync(p)));
  if (choice === "auto" || choice === "swiftshader") candidates.push(...SWIFTSHADER_ICDS.filter((p) => fs.existsSync(p)));
  const tried: string[] = [];
  for (const icd of candidates) {
    if (icd === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = icd;
    const instance = dawn.create([]);
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await instance.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
    } catch (e) {
      tried.push(`${icd ?? "system Vulkan drivers"}: ${(e as Error).message}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${icd ?? "system Vulkan drivers"}: no adapter`);
      continue;
    }
    const isCpu = CPU_ARCHITECTURES.test(`${adapter.info.architecture} ${adapter.info.description}`);
    // The loader's own search may find only a CPU driver; prefer the ordered CPU list for those.
    if (icd === undefined && !userIcd && isCpu && choice === "auto" && candidates.length > 1) {
      tried.push(`system Vulkan drivers: only a CPU adapter (${adapter.info.description}); trying the known CPU drivers in order`);
      continue;
    }
    return { adapter, instance, icd };
  }
  if (userIcd === undefined) delete process.env.VK_ICD_FILENAMES;
  else process.env.VK_ICD_FILENAMES = userIcd;
  throw new GpuError(`No WebGPU adapter found. Tried:\n  - ${tried.join("\n  - ") || "nothing (no Vulkan driver files found)"}\n${INSTALL_HINT}`);
}

/** A JSON file in the user's cache directory ($GRADWGSL_CACHE_DIR, else $XDG_CACHE_HOME/gradwgsl or ~/.cache/gradwgsl). */
export function cacheFile<T>(name: string): { get(): Promise<T>; set(value: T): Promise<void> } {
  const fs = process.getBuiltinModule("node:fs/promises");
  const path = process.getBuiltinModule("node:path");
  const os = process.getBuiltinModule("node:os");
  const dir = process.env.GRADWGSL_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "gradwgsl");
  const file = path.join(dir, name);
  return {
    get: async () => JSON.parse(await fs.readFile(file, "utf8").catch(() => "{}")),
    set: async (value) => {
      await fs.mkdir(dir, { recursive: true });
      // Write then rename, so processes tuning at the same time never leave a half-written file.
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(value, null, 2));
      await fs.rename(tmp, file);
    },
  };
}
