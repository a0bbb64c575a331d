// The 8 rotations/flips of the last two axes (H, W) of a tensor (src/kernels/dihedral.ts). Every output pixel (oy, ox)
// of a plane reads input pixel (iy, ix) = (rowMap · (oy, ox, 1), colMap · (oy, ox, 1)): a signed permutation of the
// axes plus an offset. Only 32-bit words move, so every dtype binds as u32. Coordinates in vec2 are (row, column).
// #include "common/index.wgsl"

struct DihedralParams {
  // Row and column of the output → input coordinate map: iy = rowMap.x·oy + rowMap.y·ox + rowMap.z, likewise ix.
  rowMap: vec4<i32>,
  colMap: vec4<i32>,
  inHeight: u32,
  inWidth: u32,
  outHeight: u32,
  outWidth: u32,
  // Leading elements (N·C...): planes of H·W.
  planes: u32,
  tilesX: u32,
  tilesY: u32,
}

@group(0) @binding(0) var<uniform> params: DihedralParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

const TILE = 16u;

// Padded by one column so that reading a column of the tile hits TILE different banks.
var<workgroup> tile: array<array<u32, TILE + 1u>, TILE>;

fn source_of(o: vec2<i32>) -> vec2<i32> {
  return vec2(dot(params.rowMap.xy, o) + params.rowMap.z, dot(params.colMap.xy, o) + params.colMap.z);
}

// One TILE x TILE output tile of one plane. Its source is a TILE x TILE (or smaller, at the edges) input box: each
// invocation reads one input pixel of the box into workgroup memory along input rows, then writes one output pixel
// along output rows, so both the reads and the writes touch consecutive addresses.
@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let w = workgroup_index(wid, nwg);
  let tilesPerPlane = params.tilesX * params.tilesY;
  let plane = w / tilesPerPlane;
  if (plane >= params.planes) { return; }
  let t = w % tilesPerPlane;
  let first = vec2(i32((t / params.tilesX) * TILE), i32((t % params.tilesX) * TILE));
  let last = min(first + i32(TILE) - 1, vec2(i32(params.outHeight), i32(params.outWidth)) - 1);
  // The map is monotone in each coordinate, so the box's corners are the images of the tile's corners.
  let a = source_of(first);
  let b = source_of(last);
  let boxFirst = min(a, b);
  let boxSize = vec2<u32>(max(a, b) - boxFirst) + 1u;
  let inPlane = plane * params.inHeight * params.inWidth;
  if (lid.y < boxSize.x && lid.x < boxSize.y) {
    let at = vec2<u32>(boxFirst) + lid.yx;
    tile[lid.y][lid.x] = src[inPlane + at.x * params.inWidth + at.y];
  }
  workgroupBarrier();
  let o = first + vec2<i32>(lid.yx);
  if (o.x > last.x || o.y > last.y) { return; }
  let inBox = vec2<u32>(source_of(o) - boxFirst);
  dst[plane * params.outHeight * params.outWidth + u32(o.x) * params.outWidth + u32(o.y)] = tile[inBox.x][inBox.y];
}
