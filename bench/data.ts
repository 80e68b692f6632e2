// Synthetic MNIST-shaped batches for throughput cases (speed does not depend on the pixel values).
export function syntheticBatch(batches: number): { x: Uint8Array; y: Uint8Array } {
  const n = batches * 64;
  const x = new Uint8Array(n * 784);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = s >>> 24;
  }
  return { x, y: Uint8Array.from({ length: n }, (_, i) => i % 10) };
}
