// Soft Jaccard losses (src/kernels/jaccard.ts): the semantic soft Jaccard on class probabilities and RDCNet's
// embedding soft Jaccard (ESJ). Both reduce, per segment m (an (item, class) pair, or an instance), the sums
//   I_m = Σ p·y,  A_m = Σ p,  Y_m = Σ y   over the pixels the segment is scored on
// into `stats` rows (I, A, Y, valid); jaccard_loss turns the rows into L = mean over valid rows of
// 1 − (I + ε)/(U + ε), U = A + Y − I, and writes the derivatives (dL/dI, dL/dA) of each row for the backwards.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"

const EPS: f32 = 1e-6;
// Instances one ESJ workgroup scores per pass over the pixels: each embedding is loaded once for KB centroids.
const KB: u32 = 8u;

struct SoftJaccardParams {
  items: u32,
  classes: u32,
  pixels: u32,
  // Non-zero: labels are instance ids, class 1 = label > 0, class 0 = label 0.
  foreground: u32,
}

struct LossParams {
  rows: u32,
}

struct EsjParams {
  items: u32,
  dims: u32,
  pixels: u32,
  // p = exp2(−‖e − c‖² / margin²) is exp(−‖e − c‖² / 2σ²) with σ = margin / √(2 ln 2).
  invMargin2: f32,
  // 1/σ² = 2 ln 2 / margin², for the gradient of p.
  invSigma2: f32,
}

@group(0) @binding(0) var<storage, read> labels: array<i32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<uniform> sj: SoftJaccardParams;
// Rows (I, A, Y, valid) of the segments; zero-filled, so rows never written are invalid.
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<uniform> lossParams: LossParams;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
// Per row (dL/dI, dL/dA) of the mean loss.
@group(0) @binding(6) var<storage, read_write> coef: array<f32>;
@group(0) @binding(7) var<storage, read> gy: array<f32>;
@group(0) @binding(8) var<storage, read_write> gprobs: array<f32>;
@group(0) @binding(9) var<uniform> esj: EsjParams;
// From instanceIds (shaders/instance.wgsl): per pixel its instance id k within its item (< 0: background or
// ignored), and per item its number of instances. Instance k of item n is row n·P + k of the per-instance arrays.
@group(0) @binding(10) var<storage, read> ids: array<i32>;
@group(0) @binding(11) var<storage, read> counts: array<u32>;
@group(0) @binding(12) var<storage, read> emb: array<f32>;
// Per instance row (c_x, c_y, c_z, |S_k|): the mean embedding over the instance's pixels and their number.
@group(0) @binding(13) var<storage, read_write> centroids: array<f32>;
// Per instance row dL/dc_k / |S_k| (without gy), what every pixel of instance k receives through its centroid.
@group(0) @binding(14) var<storage, read_write> gcent: array<f32>;
@group(0) @binding(15) var<storage, read_write> gemb: array<f32>;

var<workgroup> sharedCount: u32;

fn stats_row(m: u32) -> vec4<f32> {
  return vec4<f32>(stats[4u * m], stats[4u * m + 1u], stats[4u * m + 2u], stats[4u * m + 3u]);
}

fn set_stats_row(m: u32, v: vec4<f32>) {
  stats[4u * m] = v.x;
  stats[4u * m + 1u] = v.y;
  stats[4u * m + 2u] = v.z;
  stats[4u * m + 3u] = v.w;
}

// ---- semantic soft Jaccard ------------------------------------------------------------------------------------------

// Class of a label, −1 when the pixel has none (ignored).
fn class_of(label: i32) -> i32 {
  if (label < 0) { return -1; }
  if (sj.foreground != 0u) { return min(label, 1); }
  return label;
}

// One workgroup per (class c, item n) = (wid.x, wid.y): the row (I, A, Y, 1) of the pair over the item's pixels that
// have a class.
@compute @workgroup_size(WORKGROUP_SIZE)
fn soft_jaccard_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let n = wid.y;
  let row = n * sj.classes + c;
  var acc = vec4<f32>(0.0);
  for (var i = lid; i < sj.pixels; i += WORKGROUP_SIZE) {
    let cls = class_of(labels[n * sj.pixels + i]);
    if (cls < 0) { continue; }
    let p = probs[row * sj.pixels + i];
    let y = select(0.0, 1.0, cls == i32(c));
    acc += vec4<f32>(p * y, p, y, 0.0);
  }
  let total = workgroup_sum(lid, acc);
  if (lid == 0u) { set_stats_row(row, vec4<f32>(total.xyz, 1.0)); }
}

// One invocation per probability (n, c, i): dL/dp = gy·(dL/dI·y + dL/dA) where the pixel has a class, else 0.
@compute @workgroup_size(WORKGROUP_SIZE)
fn soft_jaccard_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= sj.items * sj.classes * sj.pixels) { return; }
  let i = idx % sj.pixels;
  let row = idx / sj.pixels;
  let c = row % sj.classes;
  let n = row / sj.classes;
  let cls = class_of(labels[n * sj.pixels + i]);
  var g = 0.0;
  if (cls >= 0) {
    let y = select(0.0, 1.0, cls == i32(c));
    g = gy[0] * (coef[2u * row] * y + coef[2u * row + 1u]);
  }
  gprobs[idx] = g;
}

// ---- the loss from the rows -----------------------------------------------------------------------------------------

// One workgroup: the mean of 1 − (I + ε)/(U + ε) over the valid rows into loss[0] (0 without any), then per row
// dL/dI = −(U + I + 2ε)/(U + ε)² / M and dL/dA = (I + ε)/(U + ε)² / M (M valid rows; 0 for invalid rows).
@compute @workgroup_size(WORKGROUP_SIZE)
fn jaccard_loss(@builtin(local_invocation_index) lid: u32) {
  var acc = vec4<f32>(0.0);
  for (var m = lid; m < lossParams.rows; m += WORKGROUP_SIZE) {
    let s = stats_row(m);
    if (s.w > 0.0) { acc += vec4<f32>(1.0 - (s.x + EPS) / (s.y + s.z - s.x + EPS), 1.0, 0.0, 0.0); }
  }
  let total = workgroup_sum(lid, acc);
  let inv = select(0.0, 1.0 / total.y, total.y > 0.0);
  if (lid == 0u) { loss[0] = total.x * inv; }
  for (var m = lid; m < lossParams.rows; m += WORKGROUP_SIZE) {
    let s = stats_row(m);
    let u = s.y + s.z - s.x + EPS;
    let valid = s.w > 0.0;
    coef[2u * m] = select(0.0, -(u + s.x + EPS) / (u * u) * inv, valid);
    coef[2u * m + 1u] = select(0.0, (s.x + EPS) / (u * u) * inv, valid);
  }
}

// ---- embedding soft Jaccard (ESJ) -----------------------------------------------------------------------------------

fn embedding(n: u32, i: u32) -> vec3<f32> {
  var v = vec3<f32>(0.0);
  for (var d = 0u; d < esj.dims; d++) { v[d] = emb[(n * esj.dims + d) * esj.pixels + i]; }
  return v;
}

fn centroid(row: u32) -> vec3<f32> {
  return vec3<f32>(centroids[4u * row], centroids[4u * row + 1u], centroids[4u * row + 2u]);
}

// Instances in item n, loaded by one invocation and made uniform for the loops around workgroup_sum.
fn uniform_count(n: u32, lid: u32) -> u32 {
  if (lid == 0u) { sharedCount = counts[n]; }
  return workgroupUniformLoad(&sharedCount);
}

// One workgroup per (block, item n) = (wid.x, wid.y), for instances k0..k0+KB−1 with k0 = KB·wid.x, KB·(wid.x +
// nwg.x), ...: the mean embedding over each instance's pixels and their number into centroids.
@compute @workgroup_size(WORKGROUP_SIZE)
fn esj_centroids(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let n = wid.y;
  let count = uniform_count(n, lid);
  for (var k0 = wid.x * KB; k0 < count; k0 += nwg.x * KB) {
    var acc: array<vec4<f32>, KB>;
    for (var i = lid; i < esj.pixels; i += WORKGROUP_SIZE) {
      let id = ids[n * esj.pixels + i];
      if (id >= i32(k0) && id < i32(k0 + KB)) { acc[u32(id) - k0] += vec4<f32>(embedding(n, i), 1.0); }
    }
    let blockSize = min(KB, count - k0);
    for (var j = 0u; j < blockSize; j++) {
      let total = workgroup_sum(lid, acc[j]);
      if (lid == 0u) {
        let row = n * esj.pixels + k0 + j;
        centroids[4u * row] = total.x / total.w;
        centroids[4u * row + 1u] = total.y / total.w;
        centroids[4u * row + 2u] = total.z / total.w;
        centroids[4u * row + 3u] = total.w;
      }
    }
  }
}

// One workgroup per (block, item n), blocks as in esj_centroids: over the item's instance pixels (its foreground),
// p_k = exp2(−‖e − c_k‖²/margin²) and y_k = [pixel in instance k], the row (Σ p·y, Σ p, Σ y, 1) of each instance k.
@compute @workgroup_size(WORKGROUP_SIZE)
fn esj_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let n = wid.y;
  let count = uniform_count(n, lid);
  for (var k0 = wid.x * KB; k0 < count; k0 += nwg.x * KB) {
    let blockSize = min(KB, count - k0);
    var c: array<vec3<f32>, KB>;
    for (var j = 0u; j < blockSize; j++) { c[j] = centroid(n * esj.pixels + k0 + j); }
    var acc: array<vec4<f32>, KB>;
    for (var i = lid; i < esj.pixels; i += WORKGROUP_SIZE) {
      let id = ids[n * esj.pixels + i];
      if (id < 0) { continue; }
      let e = embedding(n, i);
      for (var j = 0u; j < blockSize; j++) {
        let d = e - c[j];
        let p = exp2(-dot(d, d) * esj.invMargin2);
        let y = select(0.0, 1.0, id == i32(k0 + j));
        acc[j] += vec4<f32>(p * y, p, y, 0.0);
      }
    }
    for (var j = 0u; j < blockSize; j++) {
      let total = workgroup_sum(lid, acc[j]);
      if (lid == 0u) { set_stats_row(n * esj.pixels + k0 + j, vec4<f32>(total.xyz, 1.0)); }
    }
  }
}

// The ESJ backward. With g_k(i) = dL/dI_k·y_k(i) + dL/dA_k = dL/dp_k(i) on foreground pixels i, and
// dp/de_i = −p·(e_i − c_k)/σ², dp/dc_k = +p·(e_i − c_k)/σ², c_k = (1/|S_k|) Σ_{j∈S_k} e_j:
//   dL/dc_k = Σ_i g_k(i)·p_k(i)·(e_i − c_k)/σ²                                   (esj_centroid_grad)
//   dL/de_i = −Σ_k g_k(i)·p_k(i)·(e_i − c_k)/σ² + dL/dc_{k(i)} / |S_{k(i)}|     (esj_embedding_grad)
// where k(i) is pixel i's own instance; background and ignored pixels get 0.

// One workgroup per (block, item n), blocks as in esj_centroids: dL/dc_k / |S_k| of each instance k into gcent.
@compute @workgroup_size(WORKGROUP_SIZE)
fn esj_centroid_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let n = wid.y;
  let count = uniform_count(n, lid);
  for (var k0 = wid.x * KB; k0 < count; k0 += nwg.x * KB) {
    let blockSize = min(KB, count - k0);
    var c: array<vec3<f32>, KB>;
    var dI: array<f32, KB>;
    var dA: array<f32, KB>;
    for (var j = 0u; j < blockSize; j++) {
      let row = n * esj.pixels + k0 + j;
      c[j] = centroid(row);
      dI[j] = coef[2u * row];
      dA[j] = coef[2u * row + 1u];
    }
    var acc: array<vec4<f32>, KB>;
    for (var i = lid; i < esj.pixels; i += WORKGROUP_SIZE) {
      let id = ids[n * esj.pixels + i];
      if (id < 0) { continue; }
      let e = embedding(n, i);
      for (var j = 0u; j < blockSize; j++) {
        let d = e - c[j];
        let p = exp2(-dot(d, d) * esj.invMargin2);
        let g = select(dA[j], dI[j] + dA[j], id == i32(k0 + j));
        acc[j] += vec4<f32>(g * p * d, 0.0);
      }
    }
    for (var j = 0u; j < blockSize; j++) {
      let total = workgroup_sum(lid, acc[j]);
      if (lid == 0u) {
        let row = n * esj.pixels + k0 + j;
        let scale = esj.invSigma2 / centroids[4u * row + 3u];
        gcent[4u * row] = total.x * scale;
        gcent[4u * row + 1u] = total.y * scale;
        gcent[4u * row + 2u] = total.z * scale;
        gcent[4u * row + 3u] = 0.0;
      }
    }
  }
}

// One invocation per pixel (n, i): dL/de_i times gy, from every instance of its item and its own centroid.
@compute @workgroup_size(WORKGROUP_SIZE)
fn esj_embedding_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_index(gid, nwg);
  if (idx >= esj.items * esj.pixels) { return; }
  let n = idx / esj.pixels;
  let i = idx % esj.pixels;
  let id = ids[idx];
  var g = vec3<f32>(0.0);
  if (id >= 0) {
    let e = embedding(n, i);
    for (var k = 0u; k < counts[n]; k++) {
      let row = n * esj.pixels + k;
      let d = e - centroid(row);
      let p = exp2(-dot(d, d) * esj.invMargin2);
      let gk = select(coef[2u * row + 1u], coef[2u * row] + coef[2u * row + 1u], id == i32(k));
      g -= gk * p * d;
    }
    let own = 4u * (n * esj.pixels + u32(id));
    g = g * esj.invSigma2 + vec3<f32>(gcent[own], gcent[own + 1u], gcent[own + 2u]);
    g *= gy[0];
  }
  for (var d = 0u; d < esj.dims; d++) { gemb[(n * esj.dims + d) * esj.pixels + i] = g[d]; }
}
