// Graph partitions on hand-checkable graphs: union-find, connected components above a threshold, and the mutex
// watershed separating a chain with one strong repulsive edge, carrying mutexes through merges, and ignoring a weak
// one; errors.
import { describe, expect, it } from 'vitest';
import { connectedComponents, mutexWatershed, UnionFind } from '../src/models/graph-partition.ts';

const graph = (edges: [number, number, number][]) => ({ a: edges.map((e) => e[0]), b: edges.map((e) => e[1]), weight: edges.map((e) => e[2]) });

describe('UnionFind', () => {
  it('joins sets and numbers them in the order of their smallest element', () => {
    const sets = new UnionFind(6);
    sets.union(4, 1);
    sets.union(5, 3);
    sets.union(3, 1);
    expect(sets.find(5)).toBe(sets.find(4));
    expect(Array.from(sets.components())).toEqual([0, 1, 2, 1, 1, 1]);
  });
});

describe('connectedComponents', () => {
  it('merges along the edges above the threshold only', () => {
    const g = graph([[0, 1, 0.5], [1, 2, -0.3], [2, 3, 0.8], [3, 5, 0.1]]);
    expect(Array.from(connectedComponents(6, g, 0.2))).toEqual([0, 0, 1, 1, 2, 3]);
    expect(Array.from(connectedComponents(6, g))).toEqual([0, 0, 1, 1, 2, 1]);
  });

  it('a chain stays one component whatever its negative edges say', () => {
    expect(Array.from(connectedComponents(4, graph([[0, 1, 0.5], [1, 2, 0.5], [2, 3, 0.5], [0, 3, -0.9]])))).toEqual([0, 0, 0, 0]);
  });
});

describe('mutexWatershed', () => {
  it('a strong negative edge between the ends of a chain splits it where the chain is weakest to reach', () => {
    // −0.9 first: a mutex between 0 and 3. Then 2–3 (0.6) merges, 0–1 (0.5) merges, 1–2 (0.4) would join 0 and 3.
    const g = graph([[0, 1, 0.5], [1, 2, 0.4], [2, 3, 0.6], [0, 3, -0.9]]);
    expect(Array.from(mutexWatershed(4, g))).toEqual([0, 0, 1, 1]);
  });

  it('a weak negative edge comes too late to separate', () => {
    expect(Array.from(mutexWatershed(4, graph([[0, 1, 0.5], [1, 2, 0.4], [2, 3, 0.6], [0, 3, -0.3]])))).toEqual([0, 0, 0, 0]);
  });

  it('mutexes move with merges, in both directions', () => {
    // Mutex 0–2; 1 joins 2 and the cluster keeps the mutex, so 0–1 cannot merge; 3 joins 0 and brings the mutex along.
    const g = graph([[0, 2, -0.9], [1, 2, 0.8], [0, 3, 0.75], [0, 1, 0.7], [3, 1, 0.6]]);
    expect(Array.from(mutexWatershed(4, g))).toEqual([0, 1, 1, 0]);
  });

  it('equal |affinity|: the earlier edge first; affinity 0 does nothing', () => {
    expect(Array.from(mutexWatershed(3, graph([[0, 1, -0.5], [1, 2, 0.5], [0, 2, 0.5], [0, 1, 0]])))).toEqual([0, 1, 1]);
    expect(Array.from(mutexWatershed(3, graph([[1, 2, 0.5], [0, 2, 0.5], [0, 1, -0.5]])))).toEqual([0, 0, 0]);
    expect(Array.from(mutexWatershed(2, graph([[0, 1, 0]])))).toEqual([0, 1]);
  });
});

describe('partition errors', () => {
  it('names the edge that is wrong', () => {
    expect(() => connectedComponents(3, graph([[0, 3, 1]]))).toThrow('connectedComponents: edge 0 joins 0 and 3, outside the 3 nodes');
    expect(() => mutexWatershed(3, graph([[0, 1, 1], [1, 2, NaN]]))).toThrow('mutexWatershed: edge 1 (1–2) has affinity NaN');
    expect(() => mutexWatershed(3, { a: [0], b: [1, 2], weight: [1] })).toThrow('mutexWatershed: edges have 1 and 2 end nodes for 1 weights');
  });
});
