// PatchPerPix's instance assembly on a sampling grid (src/kernels/consensus.ts): the consensus of pixel pairs (step 1
// of the paper's Sec. 2.1), patch scores and covers (step 2) and patch-graph affinities (step 4). The grid takes every
// s-th pixel per axis; grid pixel g stands for image pixel g·s. A patch is centred at a grid pixel and sampled at
// offsets k·s, k ∈ [−h, h] per axis (K = Π(2h + 1) samples, k row-major), so its sampled pixels are grid pixels too.
// Volumes are (D, H, W) with D = 1 and h_z = 0 in 2D; vector components (.x, .y, .z) are the axes (z, y, x).
//
// Sites are the grid pixels that are foreground with exactly one instance: only they centre patches and form pairs.
// The consensus of the pair (q1, q2), |q2 − q1| ≤ 2h per axis, is stored once, at the site whose offset o = q2 − q1
// to the other comes after 0 in row-major order over [−2h, 2h]: per site, the OFFSETS = (Π(4h + 1) − 1) / 2 offsets
// after the zero offset (as the authors' kernels store it at the pixel of the smaller patch index).
//
// Every output is one invocation's sum in a fixed order (no atomics): the same on every run.
// #include "common/index.wgsl"

// The most samples per patch (K) the consensus stages in workgroup memory (2D: h ≤ 13; 3D: h ≤ 4).
const MAX_SAMPLES = 768u;

struct AssemblyParams {
  // (D, H, W, -) of the grid and (h_z, h_y, h_x, -).
  grid: vec4<u32>,
  reach: vec4<u32>,
  // Number of sites F, samples per patch K, stored offsets per site, edges E, cover words per patch ⌈K / 32⌉.
  sites: u32,
  samples: u32,
  offsets: u32,
  edges: u32,
  words: u32,
  // TH in (0.5, 1).
  threshold: f32,
}

@group(0) @binding(0) var<uniform> params: AssemblyParams;
// [K, D, H, W]: the value at offset k·s of the patch centred at grid pixel g (read only where g is a site).
@group(0) @binding(1) var<storage, read> samples: array<f32>;
// [F]: the grid index of each site.
@group(0) @binding(2) var<storage, read> sites: array<u32>;
// [D, H, W]: the site index of each grid pixel, −1 where it is not a site.
@group(0) @binding(3) var<storage, read> siteIndex: array<i32>;
// [F, OFFSETS]: the consensus of site f and the pixel at the stored offset j from it, in [−1, 1], 0 without votes.
@group(0) @binding(4) var<storage, read_write> consensusOut: array<f32>;
@group(0) @binding(5) var<storage, read> consensus: array<f32>;
// [F]: each site's patch score (0 where the site centres no patch).
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
// [F, words]: bit k set where the patch's sample k is > TH on a site; all clear where the site centres no patch.
@group(0) @binding(7) var<storage, read_write> cover: array<u32>;
// [E, 2]: the site indices of the two patch centres of each edge.
@group(0) @binding(8) var<storage, read> edges: array<u32>;
// [E]: each edge's affinity (0 without pixel pairs) and the number of pixel pairs it averages.
@group(0) @binding(9) var<storage, read_write> affinities: array<f32>;
@group(0) @binding(10) var<storage, read_write> pairs: array<u32>;

// Per sample k1, the value that the patch centred at q1 − k1 gives the consensus workgroup's site q1.
var<workgroup> stagedValue: array<f32, MAX_SAMPLES>;

fn reach() -> vec3<i32> {
  return vec3<i32>(params.reach.xyz);
}

fn grid_volume() -> u32 {
  return volume3(params.grid.xyz);
}

fn grid_coords(g: u32) -> vec3<i32> {
  return vec3<i32>(coords3(g, params.grid.xyz));
}

fn grid_index(q: vec3<i32>) -> u32 {
  return index3(vec3<u32>(q), params.grid.xyz);
}

// The site at grid coordinates q, or −1 where q is outside the grid or not a site.
fn site_at(q: vec3<i32>) -> i32 {
  if (any(q < vec3<i32>(0)) || any(q >= vec3<i32>(params.grid.xyz))) { return -1; }
  return siteIndex[grid_index(q)];
}

// Offset k ∈ [−h, h] of sample index i, and back.
fn sample_offset(i: u32) -> vec3<i32> {
  return vec3<i32>(coords3(i, 2u * params.reach.xyz + 1u)) - reach();
}

fn sample_index(k: vec3<i32>) -> u32 {
  return index3(vec3<u32>(k + reach()), 2u * params.reach.xyz + 1u);
}

// Sample k of the patch centred at grid index g.
fn sample(k: vec3<i32>, g: u32) -> f32 {
  return samples[sample_index(k) * grid_volume() + g];
}

// Whether the site at grid index g centres a patch: its own patch calls it foreground.
fn is_patch(g: u32) -> bool {
  return sample(vec3<i32>(0), g) > params.threshold;
}

// The row-major index of pair offset o ∈ [−2h, 2h] is OFFSETS + offset_step(o) (index OFFSETS is the zero offset):
// linear in o, so the index of k2 − k1 is OFFSETS + offset_step(k2) − offset_step(k1).
fn offset_step(o: vec3<i32>) -> i32 {
  let width = 4 * reach() + 1;
  return (o.x * width.y + o.y) * width.z + o.z;
}

fn offset_of(i: u32) -> vec3<i32> {
  return vec3<i32>(coords3(i, 4u * params.reach.xyz + 1u)) - 2 * reach();
}

// The consensus of sites s1 and s2 whose pair offset (s1 to s2) has row-major index i ≠ OFFSETS, from where it is
// stored: at s1 for offsets after 0, at s2 (offset reversed) for those before.
fn consensus_at(s1: i32, s2: i32, i: i32) -> f32 {
  let zero = i32(params.offsets);
  if (i > zero) { return consensus[u32(s1) * params.offsets + u32(i - zero - 1)]; }
  return consensus[u32(s2) * params.offsets + u32(zero - 1 - i)];
}

// One patch's vote on a pair of its pixels with values v1, v2, and whether it votes: both > TH agree (up to 1), one
// > TH with the other < 1 − TH disagree (down to −1), anything else abstains. Symmetric in v1, v2.
fn vote(v1: f32, v2: f32) -> vec2<f32> {
  let th = params.threshold;
  let high = max(v1, v2);
  let low = min(v1, v2);
  if (low > th) { return vec2<f32>((v1 * v2 - th * th) / (1.0 - th * th), 1.0); }
  if (high > th && low < 1.0 - th) { return vec2<f32>(-(high * (1.0 - low) - th * th) / (1.0 - th * th), 1.0); }
  return vec2<f32>(0.0);
}

// One workgroup per site f at q1, one invocation per stored offset o (strided): the mean vote on the pair (q1, q1 + o)
// of every patch whose sampled pixels hold both, gathered over the patch centres c = q1 − k1 with k1 and k1 + o in
// [−h, h] (no atomics); 0 where q1 + o is no site or no patch votes. The workgroup first stages, per k1, the value
// patch c gives q1 (−1 where c centres no patch).
@compute @workgroup_size(WORKGROUP_SIZE)
fn consensus_gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
  let f = workgroup_index(wid, nwg);
  if (f >= params.sites) { return; }
  let q1 = grid_coords(sites[f]);
  for (var k = lid; k < params.samples; k += WORKGROUP_SIZE) {
    let c = q1 - sample_offset(k);
    var v = -1.0;
    if (site_at(c) >= 0 && is_patch(grid_index(c))) { v = samples[k * grid_volume() + grid_index(c)]; }
    stagedValue[k] = v;
  }
  workgroupBarrier();
  for (var j = lid; j < params.offsets; j += WORKGROUP_SIZE) {
    let o = offset_of(j + params.offsets + 1u);
    var total = 0.0;
    var count = 0.0;
    if (site_at(q1 + o) >= 0) {
      let lo = max(-reach(), -reach() - o);
      let hi = min(reach(), reach() - o);
      for (var z = lo.x; z <= hi.x; z++) {
        for (var y = lo.y; y <= hi.y; y++) {
          for (var x = lo.z; x <= hi.z; x++) {
            let k1 = vec3<i32>(z, y, x);
            let v1 = stagedValue[sample_index(k1)];
            if (v1 < 0.0) { continue; }
            let v = vote(v1, sample(k1 + o, grid_index(q1 - k1)));
            total += v.x;
            count += v.y;
          }
        }
      }
    }
    consensusOut[f * params.offsets + j] = select(0.0, total / count, count > 0.0);
  }
}

// One invocation per site, the patch it centres: its cover bits (samples > TH on sites) and its score, the mean
// agreement of its pixel pairs with the consensus over the pairs with one value > TH (the authors' rankPatches): +
// consensus where the other is > TH too, − consensus where it is < 1 − TH, 0 in between.
@compute @workgroup_size(WORKGROUP_SIZE)
fn patch_scores(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let f = flat_index(gid, nwg);
  if (f >= params.sites) { return; }
  let g = sites[f];
  let centre = grid_coords(g);
  let th = params.threshold;
  let is_centre = is_patch(g);
  var word = 0u;
  var total = 0.0;
  var count = 0u;
  var k1 = 0u;
  for (var z1 = -reach().x; z1 <= reach().x; z1++) {
    for (var y1 = -reach().y; y1 <= reach().y; y1++) {
      for (var x1 = -reach().z; x1 <= reach().z; x1++) {
        let o1 = vec3<i32>(z1, y1, x1);
        let s1 = site_at(centre + o1);
        if (is_centre && s1 >= 0 && samples[k1 * grid_volume() + g] > th) {
          word |= 1u << (k1 % 32u);
          var k2 = 0u;
          for (var z2 = -reach().x; z2 <= reach().x; z2++) {
            for (var y2 = -reach().y; y2 <= reach().y; y2++) {
              for (var x2 = -reach().z; x2 <= reach().z; x2++) {
                let o2 = vec3<i32>(z2, y2, x2);
                let s2 = site_at(centre + o2);
                let v2 = samples[k2 * grid_volume() + g];
                // Pairs of two values > TH are counted once, from the first of the two.
                if (s2 >= 0 && k2 != k1 && (v2 <= th || k2 > k1)) {
                  let i = i32(params.offsets) + offset_step(o2 - o1);
                  if (v2 > th) {
                    total += consensus_at(s1, s2, i);
                  } else if (v2 < 1.0 - th) {
                    total -= consensus_at(s1, s2, i);
                  }
                  count++;
                }
                k2++;
              }
            }
          }
        }
        if (k1 % 32u == 31u || k1 + 1u == params.samples) {
          cover[f * params.words + k1 / 32u] = word;
          word = 0u;
        }
        k1++;
      }
    }
  }
  scores[f] = select(0.0, total / f32(count), count > 0u);
}

// One invocation per edge: the mean consensus of the pixel pairs (qA, qB), qA a sampled pixel > TH of patch A and qB
// one of patch B, both sites, qA ≠ qB and within 2h of each other (the authors' computePatchGraph), and how many
// pairs that is. (An invocation per edge rather than a workgroup: a patch's pixels > TH are few, so most
// invocations of a workgroup per edge would idle.)
@compute @workgroup_size(WORKGROUP_SIZE)
fn patch_affinities(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_index(gid, nwg);
  if (e >= params.edges) { return; }
  let gA = sites[edges[2u * e]];
  let gB = sites[edges[2u * e + 1u]];
  let cA = grid_coords(gA);
  let cB = grid_coords(gB);
  let th = params.threshold;
  var total = 0.0;
  var count = 0u;
  for (var zA = -reach().x; zA <= reach().x; zA++) {
    for (var yA = -reach().y; yA <= reach().y; yA++) {
      for (var xA = -reach().z; xA <= reach().z; xA++) {
        let qA = cA + vec3<i32>(zA, yA, xA);
        let sA = site_at(qA);
        if (sA < 0 || sample(vec3<i32>(zA, yA, xA), gA) <= th) { continue; }
        // kB such that qB = cB + kB lies within 2h of qA.
        let lo = max(-reach(), qA - 2 * reach() - cB);
        let hi = min(reach(), qA + 2 * reach() - cB);
        for (var z = lo.x; z <= hi.x; z++) {
          for (var y = lo.y; y <= hi.y; y++) {
            for (var x = lo.z; x <= hi.z; x++) {
              let kB = vec3<i32>(z, y, x);
              let sB = site_at(cB + kB);
              if (sB < 0 || sB == sA || sample(kB, gB) <= th) { continue; }
              total += consensus_at(sA, sB, i32(params.offsets) + offset_step(cB + kB - qA));
              count++;
            }
          }
        }
      }
    }
  }
  affinities[e] = select(0.0, total / f32(count), count > 0u);
  pairs[e] = count;
}
