// lib/activation.wgsl — activation functions and their derivatives, shared by every kernel that fuses one.
// Codes: 0 linear, 1 relu, 2 sigmoid, 3 tanh. Derivatives take the forward OUTPUT y, which is what the
// backward pass keeps, so no pre-activation buffer is needed. Parameter names differ from every binding
// name on purpose: wgsl_reflect counts a parameter named like a global as a use of that global.

fn activate(kind: u32, pre: f32) -> f32 {
  switch kind {
    case 1u: { return max(pre, 0.0); }
    case 2u: { return 1.0 / (1.0 + exp(-pre)); }
    case 3u: { return tanh(pre); }
    default: { return pre; }
  }
}

fn activate4(kind: u32, pre: vec4f) -> vec4f {
  switch kind {
    case 1u: { return max(pre, vec4f(0.0)); }
    case 2u: { return 1.0 / (1.0 + exp(-pre)); }
    case 3u: { return tanh(pre); }
    default: { return pre; }
  }
}

fn activation_grad(kind: u32, post: f32) -> f32 {
  switch kind {
    case 1u: { return select(0.0, 1.0, post > 0.0); }
    case 2u: { return post * (1.0 - post); }
    case 3u: { return 1.0 - post * post; }
    default: { return 1.0; }
  }
}

fn activation_grad4(kind: u32, post: vec4f) -> vec4f {
  switch kind {
    case 1u: { return select(vec4f(0.0), vec4f(1.0), post > vec4f(0.0)); }
    case 2u: { return post * (1.0 - post); }
    case 3u: { return 1.0 - post * post; }
    default: { return vec4f(1.0); }
  }
}
