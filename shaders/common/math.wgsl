// e^v and tanh accurate on every adapter, where WGSL's built-ins are not (lavapipe's, below): the elementwise exp and
// tanh, and what any kernel whose results must agree with theirs calls.

// e^v to about 1 ulp on every adapter (the built-in exp may be off by 3 + 2|v| ulp, 1e-6 relative at |v| = 30 on
// lavapipe). w = k ln2 + r with |r| <= ln2/2; k ln2_hi is exact (ln2_hi has 16 significant bits), and Taylor to r^7
// leaves under 6e-9 relative. e^-104 rounds to 0 and e^89 to inf; results below 2^-126 may flush to zero.
fn exp_accurate(v: f32) -> f32 {
  let w = clamp(v, -104.0, 89.0);
  let k = round(w * 1.44269504);
  let r = (w - k * 0.693145751953125) - k * 1.42860677e-6;
  let p = 1.0 + r * (1.0 + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
  return ldexp(p, i32(k));
}

// tanh to about 1 ulp on every adapter (lavapipe's built-in loses all precision for |v| < 1e-6): below 0.5 the odd
// Taylor series to v^17 (under 1e-9 relative there); above, 1 - 2 / (e^2|v| + 1), where 2 / (e^2|v| + 1) <= 0.54 so
// the subtraction cancels nothing, and |v| >= 10 is 1 in f32.
fn tanh_accurate(v: f32) -> f32 {
  let u = abs(v);
  var t: f32;
  if (u < 0.5) {
    let u2 = u * u;
    t = u * (1.0 + u2 * (-1.0 / 3.0 + u2 * (2.0 / 15.0 + u2 * (-17.0 / 315.0 + u2 * (62.0 / 2835.0 + u2 * (-1382.0 / 155925.0
      + u2 * (21844.0 / 6081075.0 + u2 * (-929569.0 / 638512875.0 + u2 * (6404582.0 / 10854718875.0)))))))));
  } else {
    t = 1.0 - 2.0 / (exp_accurate(2.0 * min(u, 10.0)) + 1.0);
  }
  return select(t, -t, v < 0.0);
}
