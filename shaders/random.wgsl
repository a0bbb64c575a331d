// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, as in Random123). Element i of a tensor takes
// word i % 4 of philox(counter = (i / 4, 0, 0, 0), key = seed), so the result depends only on the seed and the
// element's index, never on how the work is dispatched. One invocation computes the WORDS = 4 elements of one
// counter: invocation `quad` (its flat index) computes elements 4·quad .. 4·quad + 3.
// #include "common/index.wgsl"

// Words of one Philox call, elements per invocation.
const WORDS = 4u;

const UNIFORM = 0u;   // a + (b − a)·u, u in [0, 1)
const NORMAL = 1u;    // a + b·z, z standard normal (Box-Muller on pairs of words)
const BERNOULLI = 2u; // b where u < a, else 0

override DIST: u32 = UNIFORM;

struct RandomParams {
  n: u32,
  key0: u32,
  key1: u32,
  a: f32,
  b: f32,
}

@group(0) @binding(0) var<storage, read_write> bits: array<u32>;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<uniform> params: RandomParams;

// The high 32 bits of a·b, from 16-bit halves (WGSL has no 64-bit integers); a·b's low bits are the wrapping a * b.
fn mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let lh = al * bh;
  let hl = ah * bl;
  let mid = ((al * bl) >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    let hi0 = mulhi(0xD2511F53u, c.x);
    let lo0 = 0xD2511F53u * c.x;
    let hi1 = mulhi(0xCD9E8D57u, c.z);
    let lo1 = 0xCD9E8D57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

fn words(quad: u32) -> vec4<u32> {
  return philox(vec4<u32>(quad, 0u, 0u, 0u), vec2<u32>(params.key0, params.key1));
}

// The top 24 bits as a float in [0, 1): exact in f32.
fn unit(w: u32) -> f32 {
  return f32(w >> 8u) * (1.0 / 16777216.0);
}

// Four raw 32-bit words.
@compute @workgroup_size(WORKGROUP_SIZE)
fn random_bits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let quad = flat_index(gid, nwg);
  let w = words(quad);
  for (var j = 0u; j < WORDS; j++) {
    let i = quad * WORDS + j;
    if (i < params.n) { bits[i] = w[j]; }
  }
}

// Four floats of the DIST distribution.
@compute @workgroup_size(WORKGROUP_SIZE)
fn random_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let quad = flat_index(gid, nwg);
  let w = words(quad);
  var v: vec4<f32>;
  switch DIST {
    case NORMAL: {
      // Radius from a uniform in (0, 1] (never log 0), angle from one in [0, 1): (w0, w1) -> v0, v1 and (w2, w3) -> v2, v3.
      let r = sqrt(-2.0 * log((vec2<f32>(vec2<u32>(w.x, w.z) >> vec2<u32>(8u)) + 1.0) * (1.0 / 16777216.0)));
      let theta = 6.2831853071795864 * vec2<f32>(unit(w.y), unit(w.w));
      v = params.a + params.b * vec4<f32>(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
    }
    case BERNOULLI: {
      let u = vec4<f32>(unit(w.x), unit(w.y), unit(w.z), unit(w.w));
      v = select(vec4<f32>(0.0), vec4<f32>(params.b), u < vec4<f32>(params.a));
    }
    default: {
      let u = vec4<f32>(unit(w.x), unit(w.y), unit(w.z), unit(w.w));
      v = params.a + (params.b - params.a) * u;
    }
  }
  for (var j = 0u; j < WORDS; j++) {
    let i = quad * WORDS + j;
    if (i < params.n) { values[i] = v[j]; }
  }
}

// Dropout: element i of x is kept (and scaled) iff uniform word m(i) < keep, where m(i) is i's index in the noise
// shape (broadcast dimensions have noise stride 0). The mask is recomputed from (seed, m), never stored: the backward
// applies this same kernel to gy.
override BROADCAST: bool = false;

struct DropoutParams {
  n: u32,
  key0: u32,
  key1: u32,
  keep: f32,
  scale: f32,
  rank: u32,
  // Elements per mask element when the mask covers leading axes only (dropout_rows).
  inner: u32,
  shape: Dims,
  noiseStrides: Dims,
}

@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> dropoutParams: DropoutParams;

fn noise_word(m: u32) -> u32 {
  return philox(vec4<u32>(m / WORDS, 0u, 0u, 0u), vec2<u32>(dropoutParams.key0, dropoutParams.key1))[m % WORDS];
}

// Four consecutive elements y[4·quad + j] = x[…] · scale or 0; one Philox call serves all four unless the mask is
// broadcast.
@compute @workgroup_size(WORKGROUP_SIZE)
fn dropout_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let quad = flat_index(gid, nwg);
  let w = philox(vec4<u32>(quad, 0u, 0u, 0u), vec2<u32>(dropoutParams.key0, dropoutParams.key1));
  for (var j = 0u; j < WORDS; j++) {
    let i = quad * WORDS + j;
    if (i >= dropoutParams.n) { return; }
    var word = w[j];
    if (BROADCAST) {
      // The element's index in the noise shape (broadcast dimensions have noise stride 0).
      word = noise_word(strided_offset(i, dropoutParams.rank, dropoutParams.shape, dropoutParams.noiseStrides));
    }
    y[i] = select(0.0, x[i] * dropoutParams.scale, unit(word) < dropoutParams.keep);
  }
}

// Four consecutive elements 4·gid.x + j of row wid.y of a mask over leading axes (spatial dropout): the whole row is
// covered by mask element wid.y, so its element index is row·inner + column with no division.
@compute @workgroup_size(WORKGROUP_SIZE)
fn dropout_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.y;
  let kept = unit(noise_word(row)) < dropoutParams.keep;
  for (var j = 0u; j < WORDS; j++) {
    let column = gid.x * WORDS + j;
    if (column >= dropoutParams.inner) { return; }
    let i = row * dropoutParams.inner + column;
    y[i] = select(0.0, x[i] * dropoutParams.scale, kept);
  }
}
