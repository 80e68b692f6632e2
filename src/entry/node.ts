// dist/lib/node.js: the Node-only half of the core (src/gpu/node.ts), which the core loads at run time in
// Node (device.ts's nodeOnly); not a package export. It reaches the core entry, as the subpath entries
// do, so the modules it shares with the core stay in dist/lib/index.js instead of a chunk of their own.
import "../index.ts";
export { nodeAdapter, cacheFile } from "../gpu/node.ts";
