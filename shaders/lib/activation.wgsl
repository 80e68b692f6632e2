// lib/activation.wgsl — activation functions and their derivatives, shared by every kernel that fuses one.
// Codes: 0 linear, 1 relu, 2 sigmoid, 3 tanh. Derivatives take the forward OUTPUT y, which is what the
// backward pass keeps, so no pre-activation buffer is needed.

fn activate(kind: u32, x: f32) -> f32 {
  switch kind {
    case 1u: { return max(x, 0.0); }
    case 2u: { return 1.0 / (1.0 + exp(-x)); }
    case 3u: { return tanh(x); }
    default: { return x; }
  }
}

fn activation_grad(kind: u32, y: f32) -> f32 {
  switch kind {
    case 1u: { return select(0.0, 1.0, y > 0.0); }
    case 2u: { return y * (1.0 - y); }
    case 3u: { return 1.0 - y * y; }
    default: { return 1.0; }
  }
}
