// Dataset folders (Node): DIR/{train,val,test}/{images,masks}/NAME.(tif|tiff|png), a mask named like its image.
// Overlapping instances come in either of two forms: a label folder's stacks/NAME.tif (a label-stack TIFF, as
// `wgseg predict` writes them), read instead of NAME.tif; or, as BBBC010 ships them, a folder named `instances` with one
// binary mask per instance, NAME_1.png, NAME_2.png, ... (DIR/split/instances is read instead of DIR/split/masks).
// Everything is checked on load, so training never starts on data it would fail on later: each problem is a
// DataError naming the file.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { DataError, readImage, readInstanceMasks, readLabels } from './io-node.ts';
import type { LabelVolume, Sample } from './volume.ts';

export type Split = 'train' | 'val' | 'test';

export interface FolderOptions {
  /** Expected spatial dimensions; a file with the other number is an error. */
  ndim?: 2 | 3;
}

export interface SplitOptions extends FolderOptions {
  /** 'optional': a split without a masks folder loads with labels null (images to predict). Default 'required'. */
  masks?: 'required' | 'optional';
}

const extensions = new Set(['.tif', '.tiff', '.png']);

async function isFolder(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** The image files of a folder by name (file name without extension), sorted; hidden and other files are skipped. */
export async function listImageFiles(folder: string): Promise<Map<string, string>> {
  if (!(await isFolder(folder))) throw new DataError(`${folder}: missing folder`);
  const files = new Map<string, string>();
  for (const file of (await readdir(folder)).sort()) {
    const ext = extname(file);
    if (file.startsWith('.') || !extensions.has(ext.toLowerCase())) continue;
    const name = file.slice(0, -ext.length);
    if (files.has(name)) throw new DataError(`${join(folder, file)}: ${files.get(name)} has the same name`);
    files.set(name, join(folder, file));
  }
  if (files.size === 0) throw new DataError(`${folder}: no images (.tif, .tiff or .png)`);
  return files;
}

const describe = (shape: number[]) => `${shape.length}D (${shape.join('x')})`;

function checkNdim(path: string, what: string, spatialShape: number[], ndim: number | undefined): void {
  if (ndim !== undefined && spatialShape.length !== ndim) {
    throw new DataError(`${path}: ${what} is ${describe(spatialShape)}, expected ${ndim}D`);
  }
}

/** One image file named `name`, labels null (an input of prediction). */
export async function loadImageFile(name: string, path: string, options: FolderOptions = {}): Promise<Sample> {
  const image = await readImage(path);
  checkNdim(path, 'image', image.shape.slice(1), options.ndim);
  return { name, image, labels: null };
}

/** Every image of a folder, labels null (the input of prediction). */
export async function loadImageFolder(folder: string, options: FolderOptions = {}): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const [name, path] of await listImageFiles(folder)) samples.push(await loadImageFile(name, path, options));
  return samples;
}

/** A folder of one binary mask per instance (named `instances`): the mask files of each image by its name, sorted. */
async function listInstanceMasks(folder: string): Promise<Map<string, string[]>> {
  const byImage = new Map<string, string[]>();
  for (const [file, path] of await listImageFiles(folder)) {
    const cut = file.lastIndexOf('_');
    if (cut <= 0) throw new DataError(`${path}: an instance mask must be named IMAGE_K (the image's name, _, the instance)`);
    const name = file.slice(0, cut);
    byImage.set(name, [...(byImage.get(name) ?? []), path]);
  }
  return byImage;
}

const isInstanceFolder = (folder: string) => basename(folder) === 'instances';

/**
 * The label files of a folder by image name: a path, or, in an `instances` folder, the list of one image's instance
 * masks; stacks/NAME.tif replaces NAME.tif where it exists.
 */
async function listLabelFiles(folder: string): Promise<Map<string, string | string[]>> {
  if (isInstanceFolder(folder)) return listInstanceMasks(folder);
  const files: Map<string, string | string[]> = await listImageFiles(folder);
  const stacks = join(folder, 'stacks');
  if (await isFolder(stacks)) {
    for (const [name, path] of await listImageFiles(stacks)) {
      if (!files.has(name)) throw new DataError(`${path}: no flat label image named ${name} in ${folder}`);
      files.set(name, path);
    }
  }
  return files;
}

/** The files of two folders paired by name; a file in one without its partner in the other is an error. */
async function pairFiles<A, B>(
  [folderA, a]: [string, Map<string, A>], [folderB, b]: [string, Map<string, B>], [whatA, whatB]: [string, string],
): Promise<[string, A, B][]> {
  const where = (p: A | B) => (Array.isArray(p) ? p[0] : p);
  for (const [name, path] of a) if (!b.has(name)) throw new DataError(`${where(path)}: no ${whatB} named ${name} in ${folderB}`);
  for (const [name, path] of b) if (!a.has(name)) throw new DataError(`${where(path)}: no ${whatA} named ${name} in ${folderA}`);
  return [...a].map(([name, path]) => [name, path, b.get(name)!]);
}

/** A mask (a file, or an image's instance masks) that must match its partner file's spatial shape. */
async function loadMask(path: string | string[], partner: string, partnerShape: number[], ndim: number | undefined): Promise<LabelVolume> {
  const labels = Array.isArray(path) ? await readInstanceMasks(path, partner) : await readLabels(path, { ndim: ndim === 2 ? 2 : undefined });
  const where = Array.isArray(path) ? path[0] : path;
  checkNdim(where, 'mask', labels.shape, ndim);
  if (labels.shape.join('x') !== partnerShape.join('x')) {
    throw new DataError(`${where}: mask is ${labels.shape.join('x')}, ${partner} is ${partnerShape.join('x')}`);
  }
  return labels;
}

/** Whether DIR/split exists (val is optional: without it, the caller holds out part of train with holdOut()). */
export const hasSplit = (dir: string, split: Split): Promise<boolean> => isFolder(join(dir, split));

/**
 * The samples of DIR/split, sorted by name, every image paired with its mask. Masks take the image's spacing (masks
 * are often written without metadata).
 */
export async function loadSplit(dir: string, split: Split, options: SplitOptions = {}): Promise<Sample[]> {
  const folder = join(dir, split);
  if (!(await isFolder(folder))) throw new DataError(`${folder}: missing folder`);
  const imagesDir = join(folder, 'images');
  const masksDir = (await isFolder(join(folder, 'instances'))) ? join(folder, 'instances') : join(folder, 'masks');
  if (options.masks === 'optional' && !(await isFolder(masksDir))) return loadImageFolder(imagesDir, options);
  const samples: Sample[] = [];
  const pairs = await pairFiles([imagesDir, await listImageFiles(imagesDir)], [masksDir, await listLabelFiles(masksDir)], ['image', 'mask']);
  for (const [name, imagePath, maskPath] of pairs) {
    const image = await readImage(imagePath);
    checkNdim(imagePath, 'image', image.shape.slice(1), options.ndim);
    const labels = await loadMask(maskPath, `image ${imagePath}`, image.shape.slice(1), options.ndim);
    samples.push({ name, image, labels: { ...labels, spacing: image.spacing } });
  }
  return samples;
}

/** A ground-truth and a predicted label image of the same name, read by load(). */
export interface LabelPairFiles {
  name: string;
  load(): Promise<{ name: string; gt: LabelVolume; pred: LabelVolume }>;
}

/** The ground-truth and predicted label files of two folders paired by name, each pair read when asked (eval reads one at a time). */
export async function labelPairFiles(gtDir: string, predDir: string, options: FolderOptions = {}): Promise<LabelPairFiles[]> {
  const files = await pairFiles([gtDir, await listLabelFiles(gtDir)], [predDir, await listLabelFiles(predDir)], ['ground truth', 'prediction']);
  return files.map(([name, gtPath, predPath]) => ({
    name,
    async load() {
      const where = Array.isArray(gtPath) ? gtPath[0] : gtPath;
      const gt = Array.isArray(gtPath) ? await readInstanceMasks(gtPath, where) : await readLabels(gtPath, { ndim: options.ndim === 2 ? 2 : undefined });
      checkNdim(where, 'mask', gt.shape, options.ndim);
      return { name, gt, pred: await loadMask(predPath, `ground truth ${where}`, gt.shape, options.ndim) };
    },
  }));
}

/** Ground-truth and predicted label images paired by name (the input of evaluation). */
export async function loadLabelPairs(
  gtDir: string,
  predDir: string,
  options: FolderOptions = {},
): Promise<{ name: string; gt: LabelVolume; pred: LabelVolume }[]> {
  const pairs = [];
  for (const files of await labelPairFiles(gtDir, predDir, options)) pairs.push(await files.load());
  return pairs;
}
