// The subgroup matmul's shader (shaders/matmul_subgroup.wgsl), which only CPU adapters whose subgroups
// have exactly 4 or 8 lanes run: kernels.ts's loadSubgroupShader imports this module before it builds
// such a matmul, and the library build makes it a file of its own (dist/lib/matmul_subgroup.js), which
// GPUs never fetch. It imports nothing of the core's: a lazy module that does can make the build split
// the core into chunks shared with it.
import source from "../../shaders/matmul_subgroup.wgsl?raw";

export default source;
