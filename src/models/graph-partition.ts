// Partitions of a signed weighted graph (nodes 0..n−1, undirected edges with an affinity each), as PatchPerPix's
// patch graph needs them (step 5 of the paper's Sec. 2.1) and any other agglomeration can use them: connected
// components of the edges above a threshold, and the mutex watershed (Wolf et al., TPAMI 2020). Both return one
// component number per node, numbered 0, 1, ... in the order of each component's smallest node, so the result
// depends on the graph only.

/** Edges of a graph: edge i joins nodes a[i] and b[i] with affinity weight[i] (> 0 attracts, < 0 repels). */
export interface WeightedEdges {
  a: ArrayLike<number>;
  b: ArrayLike<number>;
  weight: ArrayLike<number>;
}

/** Disjoint sets with path halving and union by size. */
export class UnionFind {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;

  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, i) => i);
    this.size = new Int32Array(n).fill(1);
  }

  find(x: number): number {
    const parent = this.parent;
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }

  /** Joins the sets of x and y; returns the root of the joined set. */
  union(x: number, y: number): number {
    let rx = this.find(x);
    let ry = this.find(y);
    if (rx === ry) return rx;
    if (this.size[rx] < this.size[ry]) [rx, ry] = [ry, rx];
    this.parent[ry] = rx;
    this.size[rx] += this.size[ry];
    return rx;
  }

  /** Each element's set as a number 0, 1, ... in the order of the sets' smallest elements. */
  components(): Int32Array {
    const n = this.parent.length;
    const out = new Int32Array(n);
    const number = new Int32Array(n).fill(-1);
    let next = 0;
    for (let i = 0; i < n; i++) {
      const r = this.find(i);
      if (number[r] < 0) number[r] = next++;
      out[i] = number[r];
    }
    return out;
  }
}

function checkEdges(op: string, n: number, edges: WeightedEdges): void {
  const m = edges.weight.length;
  if (edges.a.length !== m || edges.b.length !== m) {
    throw new Error(`${op}: edges have ${edges.a.length} and ${edges.b.length} end nodes for ${m} weights`);
  }
  for (let i = 0; i < m; i++) {
    const [a, b, w] = [edges.a[i], edges.b[i], edges.weight[i]];
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0 || a >= n || b >= n) {
      throw new Error(`${op}: edge ${i} joins ${a} and ${b}, outside the ${n} nodes`);
    }
    if (Number.isNaN(w)) throw new Error(`${op}: edge ${i} (${a}–${b}) has affinity NaN`);
  }
}

/** Connected components of the n-node graph over the edges whose affinity is > threshold. */
export function connectedComponents(n: number, edges: WeightedEdges, threshold = 0): Int32Array {
  checkEdges('connectedComponents', n, edges);
  const sets = new UnionFind(n);
  for (let i = 0; i < edges.weight.length; i++) if (edges.weight[i] > threshold) sets.union(edges.a[i], edges.b[i]);
  return sets.components();
}

/**
 * The mutex watershed of the n-node graph: edges in order of descending |affinity| (ties: the earlier edge first); a
 * positive edge merges its two clusters unless a mutex (an earlier negative edge) joins them, a negative edge puts a
 * mutex between its two clusters unless they are already one. Edges of affinity 0 do nothing.
 */
export function mutexWatershed(n: number, edges: WeightedEdges): Int32Array {
  checkEdges('mutexWatershed', n, edges);
  const order = Array.from({ length: edges.weight.length }, (_, i) => i)
    .filter((i) => edges.weight[i] !== 0)
    .sort((i, j) => Math.abs(edges.weight[j]) - Math.abs(edges.weight[i]) || i - j);
  const sets = new UnionFind(n);
  // The roots each root has a mutex with, kept symmetric and up to date with merges.
  const mutexes = new Map<number, Set<number>>();
  const mutexesOf = (r: number) => {
    let s = mutexes.get(r);
    if (!s) mutexes.set(r, (s = new Set()));
    return s;
  };
  for (const i of order) {
    const ra = sets.find(edges.a[i]);
    const rb = sets.find(edges.b[i]);
    if (ra === rb) continue;
    if (edges.weight[i] < 0) {
      mutexesOf(ra).add(rb);
      mutexesOf(rb).add(ra);
      continue;
    }
    if (mutexes.get(ra)?.has(rb)) continue;
    const root = sets.union(ra, rb);
    const gone = root === ra ? rb : ra;
    const moved = mutexes.get(gone);
    if (!moved) continue;
    mutexes.delete(gone);
    const kept = mutexesOf(root);
    for (const m of moved) {
      const other = mutexes.get(m)!;
      other.delete(gone);
      other.add(root);
      kept.add(m);
    }
  }
  return sets.components();
}
