// EmbedSeg's loss (src/kernels/embedseg-loss.ts; SPEC.md "EmbedSeg"): the per-instance parts on the GPU.
// prediction [N, 2D+1, P] (P pixels per item; channels: D offsets (x, y, z), D bandwidth logits σ, the seed logit);
// ids [N, P] from instanceIds (shaders/instance.wgsl): an instance pixel's id k within its item, −1 background, −2
// ignored. Instance k of item n is row r = rowStart[n] + k of every per-instance array (R rows).
// Pixel p's grid coordinate g(p) is its index along each axis times the grid spacing; its embedding is
// e(p) = tanh(offset(p)) + g(p). Instance r's Gaussian is dist_r(p) = exp(−Σ_d (e_d(p) − c_rd)²·S_rd) with c_r = g of
// its medoid pixel and the bandwidth S_r = exp(10·σ̄_r), σ̄_r the mean σ over its pixels. tanh and the seed's sigmoid
// are the elementwise ops' (common/math.wgsl, common/elementwise-ops.wgsl), so the loss sees the embeddings and seeds
// EmbedSeg's forward computes.
// #include "common/index.wgsl"
// #include "common/workgroup.wgsl"
// #include "common/math.wgsl"
// #include "common/elementwise-ops.wgsl"

const BACKGROUND: i32 = -1;
const IGNORED: i32 = -2;
// The logit of ignored pixels in every instance row: its hinge error 1 + z = −1 lies below every scored pixel's
// (≥ 0), so the Lovasz sort puts it last, where it changes neither the loss nor the other pixels' Jaccard gradients:
// the pixel is as good as absent from the row.
const IGNORED_LOGIT: f32 = -2.0;
// Medoid distance sums are fixed point with Σ over an instance of the largest distance at most 2^31 (fits u32):
// integer sums do not depend on the order of the terms, so mirror-image pixels tie exactly.
const FIXED_POINT_BUDGET: f32 = 2147483648.0;

struct Params {
  items: u32,
  dims: u32,
  pixels: u32,
  rows: u32,
  // Grid size per embedding channel (x, y, z) = (W, H, D); 1 beyond dims.
  extent: vec4<u32>,
  // Grid step per embedding channel (x, y, z); 0 beyond dims.
  spacing: vec4<f32>,
  // The length of the grid's diagonal: no two pixels of an item are farther apart.
  diagonal: f32,
  // wSeed / (N·P): the weight of seed terms in the mean over items.
  seedScale: f32,
  foregroundWeight: f32,
  // wVar / (N·D): the weight of var terms before the division by K_n and the instance's size.
  varScale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> prediction: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
// [N + 1]: the first row of every item; item n has rowStart[n + 1] − rowStart[n] instances.
@group(0) @binding(3) var<storage, read> rowStart: array<u32>;
// [R]: the item of every row.
@group(0) @binding(4) var<storage, read> rowItem: array<u32>;
// [R] pixels per instance, counted by instance_sizes (zero-filled) and read as `sizes` afterwards.
@group(0) @binding(5) var<storage, read_write> sizeCounts: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> sizes: array<u32>;
// [R + 1]: where each instance's pixels start in `members`; offsets[R] = all instance pixels of the batch.
@group(0) @binding(7) var<storage, read_write> offsets: array<u32>;
// [R]: pixels placed so far per instance (zero-filled).
@group(0) @binding(8) var<storage, read_write> cursor: array<atomic<u32>>;
// The batch's instance pixels (as n·P + p) grouped by instance, in no particular order within an instance, and
// their indices along x, y, z, 0 (as f32, exact: the medoid's inner loop then needs no integer division).
@group(0) @binding(9) var<storage, read_write> members: array<u32>;
@group(0) @binding(10) var<storage, read_write> memberCoords: array<vec4<f32>>;
// Per entry of `members`: its fixed-point sum of distances to the other pixels of its instance.
@group(0) @binding(11) var<storage, read_write> medoidSums: array<u32>;
// [R + 1]: the first medoid_sums workgroup of every instance, which takes one per WORKGROUP_SIZE of its pixels;
// chunkStart[R] = all of them.
@group(0) @binding(22) var<storage, read_write> chunkStart: array<u32>;
// [R]: per instance, its centroid (x, y, z indices, as memberCoords) and a radius in grid units around it outside
// which no pixel can be its medoid (medoid_bounds).
@group(0) @binding(23) var<storage, read_write> medoidBounds: array<vec4<f32>>;
// [R]: the medoid's pixel p within its item.
@group(0) @binding(12) var<storage, read_write> medoids: array<u32>;
// [R, 4]: σ̄_r per channel (x, y, z, 0).
@group(0) @binding(13) var<storage, read_write> sigmaMeans: array<f32>;
// [R, 8]: instance r's Gaussian, its centre c_r (x, y, z, 0) and bandwidth S_r (x, y, z, 0; 0 beyond dims).
@group(0) @binding(14) var<storage, read_write> gaussians: array<f32>;
// [R, P]: the Lovasz hinge inputs 2·dist_r − 1 and the instance masks.
@group(0) @binding(15) var<storage, read_write> logits: array<f32>;
@group(0) @binding(16) var<storage, read_write> masks: array<f32>;
// [N·P]: per pixel, its seed and var terms, weighted so that their sum is their part of the loss.
@group(0) @binding(17) var<storage, read_write> terms: array<f32>;
@group(0) @binding(18) var<storage, read> gterms: array<f32>;
@group(0) @binding(19) var<storage, read> glogits: array<f32>;
// [R, 4]: dL/dσ̄_r through the Gaussians (x, y, z, 0).
@group(0) @binding(20) var<storage, read_write> gsigmaMeans: array<f32>;
@group(0) @binding(21) var<storage, read_write> gprediction: array<f32>;

var<workgroup> best: array<vec2<u32>, WORKGROUP_SIZE>;

// Pixel p's index along x, y, z (the embedding channels' order; coords3 gives (z, y, x)).
fn coords(p: u32) -> vec3<u32> {
  return coords3(p, params.extent.zyx).zyx;
}

fn grid(p: u32) -> vec3<f32> {
  return vec3<f32>(coords(p)) * params.spacing.xyz;
}

fn channel(n: u32, c: u32, p: u32) -> u32 {
  return (n * (2u * params.dims + 1u) + c) * params.pixels + p;
}

// tanh of pixel p's offsets (0 beyond dims).
fn offsets_tanh(n: u32, p: u32) -> vec3<f32> {
  var t = vec3<f32>(0.0);
  for (var d = 0u; d < params.dims; d++) { t[d] = tanh_accurate(prediction[channel(n, d, p)]); }
  return t;
}

// Pixel p's σ (0 beyond dims).
fn sigmas(n: u32, p: u32) -> vec3<f32> {
  var s = vec3<f32>(0.0);
  for (var d = 0u; d < params.dims; d++) { s[d] = prediction[channel(n, params.dims + d, p)]; }
  return s;
}

// The elementwise sigmoid's own function (common/elementwise-ops.wgsl): the seed map EmbedSeg's forward computes.
fn seed_probability(n: u32, p: u32) -> f32 {
  return sigmoid(prediction[channel(n, 2u * params.dims, p)]);
}

fn sigma_mean(r: u32) -> vec3<f32> {
  return vec3<f32>(sigmaMeans[4u * r], sigmaMeans[4u * r + 1u], sigmaMeans[4u * r + 2u]);
}

fn centre(r: u32) -> vec3<f32> {
  return vec3<f32>(gaussians[8u * r], gaussians[8u * r + 1u], gaussians[8u * r + 2u]);
}

fn bandwidth(r: u32) -> vec3<f32> {
  return vec3<f32>(gaussians[8u * r + 4u], gaussians[8u * r + 5u], gaussians[8u * r + 6u]);
}

fn gaussian(d: vec3<f32>, s: vec3<f32>) -> f32 {
  return exp(-dot(d * d, s));
}

// ---- medoids --------------------------------------------------------------------------------------------------------

// One invocation per pixel: counts an instance pixel into its instance's size.
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_sizes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let k = ids[q];
  if (k < 0) { return; }
  atomicAdd(&sizeCounts[rowStart[q / params.pixels] + u32(k)], 1u);
}

// One workgroup: offsets = the exclusive prefix sum of sizes over all rows, and chunkStart that of the instances'
// medoid_sums workgroups (ceil(size / WORKGROUP_SIZE) each), WORKGROUP_SIZE rows per step.
@compute @workgroup_size(WORKGROUP_SIZE)
fn member_offsets(@builtin(local_invocation_index) lid: u32) {
  var carry = vec2<u32>(0u);
  for (var base = 0u; base < params.rows; base += WORKGROUP_SIZE) {
    let r = base + lid;
    var size = 0u;
    if (r < params.rows) { size = sizes[r]; }
    let scan = workgroup_exclusive_scan_u32(lid, size);
    let chunks = workgroup_exclusive_scan_u32(lid, (size + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE);
    if (r < params.rows) {
      offsets[r] = carry.x + scan.x;
      chunkStart[r] = carry.y + chunks.x;
    }
    carry += vec2<u32>(scan.y, chunks.y);
  }
  if (lid == 0u) {
    offsets[params.rows] = carry.x;
    chunkStart[params.rows] = carry.y;
  }
}

// One invocation per pixel: an instance pixel takes the next free place in its instance's part of members.
@compute @workgroup_size(WORKGROUP_SIZE)
fn member_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let k = ids[q];
  if (k < 0) { return; }
  let r = rowStart[q / params.pixels] + u32(k);
  let t = offsets[r] + atomicAdd(&cursor[r], 1u);
  members[t] = q;
  let c = vec3<f32>(coords(q % params.pixels));
  memberCoords[t] = vec4<f32>(c, 0.0);
}

// One workgroup per instance row r: a radius that spares medoid_sums most of r's pixels. For any pixel a,
// Σ_j |(a − b_j)·s| ≥ |Σ_j (a − b_j)·s| = n·|(a − c)·s| (c the centroid of r's n pixels b_j, s the spacing), so a
// pixel farther than F/n from c, F the distance sum of any pixel of r (here the one nearest c), has a larger sum than
// that pixel and is not the medoid. In medoid_sums' fixed point each term rounds by at most half a unit (and F there
// may differ from F here by an ulp of each length), and c and F carry f32 rounding (c is exact while coordinate sums
// stay below 2^24; beyond that its error is far below the margin for any instance an all-pairs search can afford):
// the radius allows 2n + 65536 units (3e-5 of the budget) and 1e-4 relative more.
@compute @workgroup_size(WORKGROUP_SIZE)
fn medoid_bounds(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; }
  let begin = offsets[r];
  let end = offsets[r + 1u];
  let n = f32(max(end - begin, 1u));
  let s = params.spacing.xyz;
  var acc = vec4<f32>(0.0);
  for (var t = begin + lid; t < end; t += WORKGROUP_SIZE) { acc += memberCoords[t]; }
  let c = workgroup_sum(lid, acc).xyz / n;
  // A pixel nearest c (non-negative f32 compare as their bits; among ties the lowest entry, whose order the scatter's
  // atomics set: any of them gives a valid bound).
  var mine = vec2<u32>(0xffffffffu);
  for (var t = begin + lid; t < end; t += WORKGROUP_SIZE) {
    let d = (memberCoords[t].xyz - c) * s;
    let candidate = vec2<u32>(bitcast<u32>(dot(d, d)), t);
    if (before(candidate, mine)) { mine = candidate; }
  }
  let a = memberCoords[min(workgroup_min_pair(lid, mine).y, max(end, 1u) - 1u)].xyz;
  let unit = FIXED_POINT_BUDGET / max(n * params.diagonal, 1e-30);
  var sum = 0u;
  for (var t = begin + lid; t < end; t += WORKGROUP_SIZE) {
    sum += u32(round(length((a - memberCoords[t].xyz) * s) * unit));
  }
  let total = workgroup_exclusive_scan_u32(lid, sum).y;
  if (lid == 0u) {
    medoidBounds[r] = vec4<f32>(c, (f32(total) + 2.0 * n + 65536.0) * 1.0001 / (n * unit));
  }
}

// One workgroup per WORKGROUP_SIZE entries of one instance r's part of members: invocation lid takes entry t (pixel
// q) and sums over r's pixels the grid distance to q, each distance in fixed point with 2^31 / (|r|·diagonal) units
// per grid unit; pixels outside medoid_bounds' radius get the largest u32 instead. The instance, and so the inner
// loop's range, is the workgroup's (no invocation waits on another instance's longer loop).
@compute @workgroup_size(WORKGROUP_SIZE)
fn medoid_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let w = workgroup_index(wid, nwg);
  if (w >= chunkStart[params.rows]) { return; }
  // The instance whose workgroups hold w: chunkStart[r] <= w < chunkStart[r + 1] (empty instances have none).
  var r = 0u;
  var hi = params.rows;
  while (hi - r > 1u) {
    let mid = (r + hi) / 2u;
    if (chunkStart[mid] <= w) { r = mid; } else { hi = mid; }
  }
  let begin = offsets[r];
  let end = offsets[r + 1u];
  let t = begin + (w - chunkStart[r]) * WORKGROUP_SIZE + lid;
  if (t >= end) { return; }
  let a = memberCoords[t].xyz;
  let s = params.spacing.xyz;
  // Outside medoid_bounds' radius: not the medoid, and its sum is not needed.
  let bound = medoidBounds[r];
  if (length((a - bound.xyz) * s) > bound.w) {
    medoidSums[t] = 0xffffffffu;
    return;
  }
  let unit = FIXED_POINT_BUDGET / max(f32(end - begin) * params.diagonal, 1e-30);
  // Integer steps (exact in f32) times the spacing: mirror-image pairs give bit-identical distances. Four pixels per
  // iteration: on lavapipe the loop ran 1.6-2x faster so (the loop's own overhead was most of its time).
  var total = 0u;
  var j = begin;
  for (; j + 4u <= end; j += 4u) {
    let d = vec4<f32>(length((a - memberCoords[j].xyz) * s), length((a - memberCoords[j + 1u].xyz) * s),
                      length((a - memberCoords[j + 2u].xyz) * s), length((a - memberCoords[j + 3u].xyz) * s));
    let u = vec4<u32>(round(d * unit));
    total += u.x + u.y + u.z + u.w;
  }
  for (; j < end; j++) { total += u32(round(length((a - memberCoords[j].xyz) * s) * unit)); }
  medoidSums[t] = total;
}

fn before(a: vec2<u32>, b: vec2<u32>) -> bool {
  return a.x < b.x || (a.x == b.x && a.y < b.y);
}

// The smallest of `mine` over the workgroup (x first, then y); call from uniform control flow.
fn workgroup_min_pair(lid: u32, mine: vec2<u32>) -> vec2<u32> {
  best[lid] = mine;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride && before(best[lid + stride], best[lid])) { best[lid] = best[lid + stride]; }
    workgroupBarrier();
  }
  let result = best[0];
  workgroupBarrier();
  return result;
}

// One workgroup per instance row r: its medoid, the pixel with the smallest distance sum (the lowest pixel index among
// equal sums).
@compute @workgroup_size(WORKGROUP_SIZE)
fn medoid_argmin(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; }
  var mine = vec2<u32>(0xffffffffu);
  for (var t = offsets[r] + lid; t < offsets[r + 1u]; t += WORKGROUP_SIZE) {
    let candidate = vec2<u32>(medoidSums[t], members[t]);
    if (before(candidate, mine)) { mine = candidate; }
  }
  let found = workgroup_min_pair(lid, mine);
  if (lid == 0u) { medoids[r] = found.y % params.pixels; }
}

// ---- forward --------------------------------------------------------------------------------------------------------

// One workgroup per instance row r (instance k of item n): σ̄_r, the mean σ over its pixels in pixel order, and its
// Gaussian: the centre c_r = g(medoid) and the bandwidth S_r = exp(10·σ̄_r) on the embedding channels.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sigma_means(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; }
  let n = rowItem[r];
  let k = i32(r - rowStart[n]);
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < params.pixels; p += WORKGROUP_SIZE) {
    if (ids[n * params.pixels + p] == k) { acc += vec4<f32>(sigmas(n, p), 0.0); }
  }
  let total = workgroup_sum(lid, acc) / f32(sizes[r]);
  if (lid == 0u) {
    sigmaMeans[4u * r] = total.x;
    sigmaMeans[4u * r + 1u] = total.y;
    sigmaMeans[4u * r + 2u] = total.z;
    sigmaMeans[4u * r + 3u] = 0.0;
    let c = grid(medoids[r]);
    let s = select(vec3<f32>(0.0), exp(10.0 * total.xyz), vec3<u32>(0u, 1u, 2u) < vec3<u32>(params.dims));
    for (var d = 0u; d < 3u; d++) {
      gaussians[8u * r + d] = c[d];
      gaussians[8u * r + 4u + d] = s[d];
    }
    gaussians[8u * r + 3u] = 0.0;
    gaussians[8u * r + 7u] = 0.0;
  }
}

// One invocation per pixel (n, p): its column of every instance row of item n, logits 2·dist_r(p) − 1 (IGNORED_LOGIT
// where ignored) and masks [p in instance r].
@compute @workgroup_size(WORKGROUP_SIZE)
fn instance_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let n = q / params.pixels;
  let p = q % params.pixels;
  let id = ids[q];
  let e = offsets_tanh(n, p) + grid(p);
  let first = rowStart[n];
  for (var r = first; r < rowStart[n + 1u]; r++) {
    let z = 2.0 * gaussian(e - centre(r), bandwidth(r)) - 1.0;
    logits[r * params.pixels + p] = select(z, IGNORED_LOGIT, id == IGNORED);
    masks[r * params.pixels + p] = select(0.0, 1.0, id >= 0 && u32(id) == r - first);
  }
}

// One invocation per pixel (n, p): its seed and var terms. Background: seedScale·s²; instance pixel of row r (of K_n):
// seedScale·foregroundWeight·(s − dist_r)² + varScale/(K_n·|r|)·Σ_d (σ_d − σ̄_rd)²; ignored: 0 (s = sigmoid(seed logit)).
@compute @workgroup_size(WORKGROUP_SIZE)
fn pixel_terms(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let n = q / params.pixels;
  let p = q % params.pixels;
  let id = ids[q];
  let s = seed_probability(n, p);
  var term = 0.0;
  if (id == BACKGROUND) {
    term = params.seedScale * s * s;
  } else if (id >= 0) {
    let r = rowStart[n] + u32(id);
    let dist = gaussian(offsets_tanh(n, p) + grid(p) - centre(r), bandwidth(r));
    let spread = sigmas(n, p) - sigma_mean(r);
    let instances = f32(rowStart[n + 1u] - rowStart[n]);
    term = params.seedScale * params.foregroundWeight * (s - dist) * (s - dist)
      + params.varScale / (instances * f32(sizes[r])) * dot(spread, spread);
  }
  terms[q] = term;
}

// ---- backward -------------------------------------------------------------------------------------------------------

// One invocation per pixel (n, p): the gradient of the pixel terms (gterms = dL/dterm) for all its channels. dist and
// σ̄ are constants here (detached, as in the reference); offsets get 0.
@compute @workgroup_size(WORKGROUP_SIZE)
fn pixel_terms_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let n = q / params.pixels;
  let p = q % params.pixels;
  let id = ids[q];
  let s = seed_probability(n, p);
  let g = gterms[q];
  var gseed = 0.0;
  var gsigma = vec3<f32>(0.0);
  if (id == BACKGROUND) {
    gseed = g * params.seedScale * 2.0 * s;
  } else if (id >= 0) {
    let r = rowStart[n] + u32(id);
    let dist = gaussian(offsets_tanh(n, p) + grid(p) - centre(r), bandwidth(r));
    let instances = f32(rowStart[n + 1u] - rowStart[n]);
    gseed = g * params.seedScale * params.foregroundWeight * 2.0 * (s - dist);
    gsigma = g * params.varScale / (instances * f32(sizes[r])) * 2.0 * (sigmas(n, p) - sigma_mean(r));
  }
  for (var d = 0u; d < params.dims; d++) {
    gprediction[channel(n, d, p)] = 0.0;
    gprediction[channel(n, params.dims + d, p)] = gsigma[d];
  }
  gprediction[channel(n, 2u * params.dims, p)] = gseed * s * (1.0 - s);
}

// With glogits = dL/dz, z = 2·dist − 1 (ignored pixels excluded):
//   dL/dσ̄_rd = Σ_p 2·glogits[r, p]·dist_r(p)·(−10·S_rd·(e_d − c_rd)²)            (sigma_mean_grad)
//   dL/de_d(p) = Σ_r 2·glogits[r, p]·dist_r(p)·(−2·S_rd·(e_d − c_rd))             (logits_grad)
// and through e = tanh(offset) + g and σ̄_r = mean σ over r's pixels:
//   dL/doffset_d(p) = dL/de_d(p)·(1 − tanh²),  dL/dσ_d(p) = dL/dσ̄_{r(p),d} / |r(p)| for p in instance r(p).

// One workgroup per instance row r: dL/dσ̄_r through its Gaussian over every scored pixel of its item.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sigma_mean_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let r = workgroup_index(wid, nwg);
  if (r >= params.rows) { return; }
  let n = rowItem[r];
  let s = bandwidth(r);
  var acc = vec4<f32>(0.0);
  for (var p = lid; p < params.pixels; p += WORKGROUP_SIZE) {
    if (ids[n * params.pixels + p] == IGNORED) { continue; }
    let d = offsets_tanh(n, p) + grid(p) - centre(r);
    acc += vec4<f32>(2.0 * glogits[r * params.pixels + p] * gaussian(d, s) * d * d, 0.0);
  }
  let total = workgroup_sum(lid, acc).xyz * (-10.0 * s);
  if (lid == 0u) {
    gsigmaMeans[4u * r] = total.x;
    gsigmaMeans[4u * r + 1u] = total.y;
    gsigmaMeans[4u * r + 2u] = total.z;
    gsigmaMeans[4u * r + 3u] = 0.0;
  }
}

// One invocation per pixel (n, p): the gradient of the logits for all its channels (seed logits get 0).
@compute @workgroup_size(WORKGROUP_SIZE)
fn logits_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = flat_index(gid, nwg);
  if (q >= params.items * params.pixels) { return; }
  let n = q / params.pixels;
  let p = q % params.pixels;
  let id = ids[q];
  let t = offsets_tanh(n, p);
  var ge = vec3<f32>(0.0);
  var gsigma = vec3<f32>(0.0);
  if (id != IGNORED) {
    let e = t + grid(p);
    for (var r = rowStart[n]; r < rowStart[n + 1u]; r++) {
      let s = bandwidth(r);
      let d = e - centre(r);
      ge += -4.0 * glogits[r * params.pixels + p] * gaussian(d, s) * s * d;
    }
  }
  if (id >= 0) {
    let r = rowStart[n] + u32(id);
    gsigma = vec3<f32>(gsigmaMeans[4u * r], gsigmaMeans[4u * r + 1u], gsigmaMeans[4u * r + 2u]) / f32(sizes[r]);
  }
  let goffset = ge * (1.0 - t * t);
  for (var d = 0u; d < params.dims; d++) {
    gprediction[channel(n, d, p)] = goffset[d];
    gprediction[channel(n, params.dims + d, p)] = gsigma[d];
  }
  gprediction[channel(n, 2u * params.dims, p)] = 0.0;
}
