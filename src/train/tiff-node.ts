// TIFF images and label images (Node). Decoding goes through `geotiff` (every compression and sample type microscopes
// write); the stack layout and voxel spacing come from ImageJ's description or OME-XML, as Fiji and tifffile read them.
// Writing is a small uncompressed encoder of our own: no npm package writes 16/32-bit multi-page ImageJ stacks.
import { fromArrayBuffer, type GeoTIFFImage, type TypedArray } from 'geotiff';
import type { LabelVolume } from './volume.ts';

/** A decoded image before conversion: samples in the file's own type, channels first ([C, (D), H, W]). */
export interface RawVolume {
  data: TypedArray;
  shape: number[];
  /** Physical size per spatial axis in µm where the file says so, else 1 (in the file's units where it names none). */
  spacing: number[];
  /** Samples per pixel (RGB: 3): channels that are colours, not ImageJ channels or pages. */
  samplesPerPixel: number;
  /** Whether the metadata says the pages are z-slices (ImageJ slices=, OME SizeZ > 1), not a plain multi-page file. */
  zDeclared: boolean;
}

/** How the pages of a file form channels, z-slices and time points: page index = c·strides.c + z·strides.z (t = 0). */
interface PageLayout {
  channels: number;
  slices: number;
  frames: number;
  strides: { c: number; z: number };
  /** Physical size in µm ([z, y, x]; undefined where the metadata says nothing). */
  spacing: (number | undefined)[];
}

/** Micrometres per unit, for the unit names ImageJ, OME and tifffile write; unknown names count as 1 (ratios stay right). */
function micronsPer(unit: string | undefined): number {
  const u = (unit ?? '').trim().replace(/\\u00B5/gi, 'µ').replace('μ', 'µ').toLowerCase();
  const table: Record<string, number> = {
    nm: 1e-3, nanometer: 1e-3, nanometre: 1e-3, å: 1e-4, angstrom: 1e-4,
    mm: 1e3, millimeter: 1e3, millimetre: 1e3, cm: 1e4, centimeter: 1e4, centimetre: 1e4, m: 1e6, meter: 1e6, metre: 1e6,
  };
  return table[u] ?? 1;
}

const positive = (v: number | undefined): number | undefined => (v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined);

/** ImageJ's description: `ImageJ=1.54f\nimages=60\nchannels=2\nslices=30\nunit=micron\nspacing=2.0\n...`. */
export function parseImageJDescription(text: string): Record<string, string> | null {
  if (!text.startsWith('ImageJ=')) return null;
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return fields;
}

/** The attributes of the first `<Pixels>` element of OME-XML (the first image of the file), or null. */
export function parseOmePixels(text: string): Record<string, string> | null {
  if (!/<(?:\w+:)?OME\b/.test(text)) return null;
  const tag = /<(?:\w+:)?Pixels\b([^>]*)>/.exec(text);
  if (!tag) return null;
  const attributes: Record<string, string> = {};
  for (const [, key, value] of tag[1].matchAll(/([\w:]+)\s*=\s*"([^"]*)"/g)) attributes[key] = value;
  const samples = /<(?:\w+:)?Channel\b[^>]*\bSamplesPerPixel\s*=\s*"(\d+)"/.exec(text);
  if (samples) attributes.SamplesPerPixel = samples[1];
  return attributes;
}

function imageJLayout(ij: Record<string, string>, pages: number, file: string): PageLayout {
  const channels = Number(ij.channels ?? 1);
  const slices = Number(ij.slices ?? 1);
  const frames = Number(ij.frames ?? 1);
  // ImageJ writes `images=N` alone for a plain stack: its pages are slices.
  const z = ij.slices || ij.channels || ij.frames ? slices : pages;
  const unit = micronsPer(ij.unit);
  const spacingZ = positive(Number(ij.spacing));
  if (channels * z * frames !== pages) {
    throw new Error(`${file}: ImageJ says channels=${channels} slices=${z} frames=${frames}, but the file has ${pages} pages`);
  }
  // ImageJ's hyperstack order is CZT, channels fastest.
  return {
    channels, slices: z, frames, strides: { c: 1, z: channels },
    spacing: [spacingZ === undefined ? undefined : spacingZ * unit, undefined, undefined],
  };
}

function omeLayout(ome: Record<string, string>, pages: number, samplesPerPixel: number, file: string): PageLayout {
  const sizeC = Number(ome.SizeC ?? 1) / Math.max(1, Number(ome.SamplesPerPixel ?? samplesPerPixel));
  const size: Record<string, number> = { C: sizeC, Z: Number(ome.SizeZ ?? 1), T: Number(ome.SizeT ?? 1) };
  const planes = size.C * size.Z * size.T;
  // A file holding several OME images stores the first one's planes first.
  if (!(planes >= 1 && planes <= pages)) {
    throw new Error(`${file}: OME-XML describes ${planes} planes (SizeC/Z/T ${size.C}/${size.Z}/${size.T}), the file has ${pages} pages`);
  }
  const order = (ome.DimensionOrder ?? 'XYZCT').slice(2);
  const strides: Record<string, number> = {};
  let stride = 1;
  for (const axis of order) {
    strides[axis] = stride;
    stride *= size[axis];
  }
  const physical = (axis: string) => {
    const v = positive(Number(ome[`PhysicalSize${axis}`]));
    return v === undefined ? undefined : v * micronsPer(ome[`PhysicalSize${axis}Unit`] ?? 'µm');
  };
  return {
    channels: size.C, slices: size.Z, frames: size.T, strides: { c: strides.C, z: strides.Z },
    spacing: [physical('Z'), physical('Y'), physical('X')],
  };
}

/**
 * x/y pixel size from XResolution/YResolution (pixels per unit). Trusted for ResolutionUnit none (ImageJ's `unit=`
 * names the unit), cm, mm and µm (tifffile's extensions); inch is what desktop software writes (72 dpi), not a pixel
 * size, so it is ignored.
 */
async function resolutionSpacing(image: GeoTIFFImage, imageJUnit: string | undefined): Promise<(number | undefined)[]> {
  const fd = image.getFileDirectory();
  const unitCode = fd.hasTag('ResolutionUnit') ? Number(await fd.loadValue('ResolutionUnit')) : 2;
  const microns = ({ 1: micronsPer(imageJUnit), 3: 1e4, 4: 1e3, 5: 1 } as Record<number, number>)[unitCode];
  const read = async (tag: 'XResolution' | 'YResolution') => {
    if (microns === undefined || !fd.hasTag(tag)) return undefined;
    const value = (await fd.loadValue(tag)) as number | ArrayLike<number>;
    // A rational's denominator over its numerator is the pixel size itself, without the rounding of 1/(n/d).
    return positive(typeof value === 'number' ? microns / value : (microns * value[1]) / value[0]);
  };
  return [await read('YResolution'), await read('XResolution')];
}

/**
 * Throws when page `index`'s strips or tiles lie past the end of the file (a truncated file), or, uncompressed, hold
 * fewer bytes than its width and height need (a header that lies): geotiff would read past the end or decode the
 * bytes that follow as pixels.
 */
async function checkPageData(page: GeoTIFFImage, index: number, fileBytes: number, file: string): Promise<void> {
  const fd = page.getFileDirectory();
  const [offsetsTag, countsTag] = page.isTiled ? (['TileOffsets', 'TileByteCounts'] as const) : (['StripOffsets', 'StripByteCounts'] as const);
  const what = `${file}: ${index > 0 ? `page ${index}: ` : ''}`;
  // Without byte counts (some old writers leave them out) there is nothing to check against.
  if (!fd.hasTag(offsetsTag) || !fd.hasTag(countsTag)) return;
  const offsets = Array.from((await fd.loadValue(offsetsTag)) as ArrayLike<number>, Number);
  const counts = Array.from((await fd.loadValue(countsTag)) as ArrayLike<number>, Number);
  const end = offsets.reduce((last, o, k) => Math.max(last, o + (counts[k] ?? 0)), 0);
  if (end > fileBytes) throw new Error(`${what}truncated: the image data runs to byte ${end}, the file has ${fileBytes}`);
  const compression = fd.hasTag('Compression') ? Number(fd.getValue('Compression')) : 1;
  const [width, height] = [page.getWidth(), page.getHeight()];
  // Tiles cover whole tile widths and heights; strips whole rows.
  const [coveredWidth, coveredHeight] = page.isTiled
    ? [Math.ceil(width / page.getTileWidth()) * page.getTileWidth(), Math.ceil(height / page.getTileHeight()) * page.getTileHeight()]
    : [width, height];
  const bits = Array.from({ length: page.getSamplesPerPixel() }, (_, s) => page.getBitsPerSample(s) || page.getBitsPerSample(0)).reduce((a, b) => a + b, 0);
  const needed = Math.ceil((coveredWidth * bits) / 8) * coveredHeight;
  const held = counts.reduce((a, b) => a + b, 0);
  if (compression === 1 && held < needed) {
    throw new Error(`${what}the header says ${width}x${height} at ${bits} bits per pixel (${needed} bytes), the image data holds ${held} bytes`);
  }
}

/** Decodes a TIFF file's bytes into channels-first samples; throws with `file` in the message when it makes no sense. */
export async function decodeTiff(bytes: Uint8Array, file: string): Promise<RawVolume> {
  const tiff = await fromArrayBuffer(bytes.slice().buffer);
  const pages: GeoTIFFImage[] = [];
  for (let i = 0, n = await tiff.getImageCount(); i < n; i++) {
    const page = await tiff.getImage(i);
    // Reduced-resolution copies (thumbnails, pyramid levels) are not planes of the image.
    const subfileType = page.getFileDirectory().hasTag('NewSubfileType') ? Number(page.getFileDirectory().getValue('NewSubfileType')) : 0;
    if ((subfileType & 1) === 0) pages.push(page);
  }
  if (pages.length === 0) throw new Error(`${file}: no full-resolution page`);
  for (const [i, page] of pages.entries()) await checkPageData(page, i, bytes.length, file);
  const first = pages[0];
  const [width, height, samples] = [first.getWidth(), first.getHeight(), first.getSamplesPerPixel()];
  const format = `${first.getBitsPerSample()}-bit format ${first.getSampleFormat()}`;
  pages.forEach((page, i) => {
    const pageFormat = `${page.getBitsPerSample()}-bit format ${page.getSampleFormat()}`;
    if (page.getWidth() !== width || page.getHeight() !== height || page.getSamplesPerPixel() !== samples || pageFormat !== format) {
      throw new Error(`${file}: page ${i} is ${page.getWidth()}x${page.getHeight()}x${page.getSamplesPerPixel()} ${pageFormat}, page 0 is ${width}x${height}x${samples} ${format}`);
    }
  });

  const fd = first.getFileDirectory();
  // geotiff keeps ASCII fields' NUL terminator.
  const description = fd.hasTag('ImageDescription') ? String(await fd.loadValue('ImageDescription')).replace(/\0+$/, '') : '';
  const imageJ = parseImageJDescription(description);
  const ome = parseOmePixels(description);
  const layout: PageLayout = imageJ
    ? imageJLayout(imageJ, pages.length, file)
    : ome
      ? omeLayout(ome, pages.length, samples, file)
      : { channels: 1, slices: pages.length, frames: 1, strides: { c: 0, z: 1 }, spacing: [undefined, undefined, undefined] };
  if (layout.frames > 1) {
    throw new Error(`${file}: ${layout.frames} time points; time series are not supported (make them z-slices if they are)`);
  }
  if (samples > 1 && layout.channels > 1) {
    throw new Error(`${file}: ${layout.channels} channels of ${samples} samples each; expected one or the other`);
  }

  const channels = samples > 1 ? samples : layout.channels;
  const depth = layout.slices;
  const plane = width * height;
  let data: TypedArray | undefined;
  for (let c = 0; c < layout.channels; c++) {
    for (let z = 0; z < depth; z++) {
      const rasters = await pages[c * layout.strides.c + z * layout.strides.z].readRasters({ interleave: false });
      for (let s = 0; s < samples; s++) {
        const raster = rasters[s] as TypedArray;
        data ??= new (raster.constructor as new (n: number) => TypedArray)(channels * depth * plane);
        data.set(raster, ((c + s) * depth + z) * plane);
      }
    }
  }
  const [yx, [sz, sy, sx]] = [await resolutionSpacing(first, imageJ?.unit), layout.spacing];
  const spacingYX = [sy ?? yx[0] ?? 1, sx ?? yx[1] ?? 1];
  return {
    data: data!,
    shape: depth > 1 ? [channels, depth, height, width] : [channels, height, width],
    spacing: depth > 1 ? [sz ?? 1, ...spacingYX] : spacingYX,
    samplesPerPixel: samples,
    zDeclared: imageJ ? imageJ.slices !== undefined : ome ? Number(ome.SizeZ ?? 1) > 1 : false,
  };
}

// The TIFF field types the label writer uses.
const SHORT = 3;
const LONG = 4;
const RATIONAL = 5;
const ASCII = 2;

/** Pixels per unit for a pixel `size` as a TIFF RATIONAL 10^k / (size·10^k), so that 1/value gives `size` back. */
function resolution(size: number): [number, number] {
  let numerator = 1_000_000;
  while (numerator > 1 && size * numerator > 0xffffffff) numerator /= 10;
  return [numerator, Math.round(size * numerator)];
}

/**
 * A label image as an uncompressed little-endian TIFF that Fiji and tifffile open: uint16 when every label fits, else
 * int32 (which also holds -1, unlabeled); 3D as one page per slice with ImageJ's description (images, slices, z
 * spacing in microns) and pixel data contiguous, as ImageJ reads stacks; X/YResolution carry the y/x spacing. Layered
 * labels (overlapping instances) become a hyperstack with one channel per layer (pages in ImageJ's CZT order).
 */
export function encodeLabelTiff(labels: LabelVolume): Uint8Array {
  const { data, shape, spacing } = labels;
  const layers = labels.layers ?? 1;
  if ((shape.length !== 2 && shape.length !== 3) || layers * shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new Error(`encodeLabelTiff: shape [${shape}] × ${layers} layer(s) does not describe ${data.length} labels as [(D), H, W]`);
  }
  const [slices, height, width] = shape.length === 3 ? shape : [1, ...shape];
  const depth = slices * layers;
  const [spacingY, spacingX] = spacing.slice(-2);
  let min = 0;
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < min) min = data[i];
    if (data[i] > max) max = data[i];
  }
  const uint16 = min >= 0 && max < 65536;
  const bytesPerSample = uint16 ? 2 : 4;
  const pageBytes = width * height * bytesPerSample;

  const description = ['ImageJ=1.11a', ...(depth > 1 ? [`images=${depth}`] : []),
    ...(layers > 1 ? [`channels=${layers}`] : []), ...(slices > 1 ? [`slices=${slices}`] : []),
    ...(layers > 1 ? ['hyperstack=true', 'mode=grayscale'] : []), 'unit=micron',
    ...(slices > 1 ? [`spacing=${spacing[0]}`] : []), ...(depth > 1 ? ['loop=false'] : []), ''].join('\n');
  const descriptionBytes = new TextEncoder().encode(`${description}\0`);
  const entriesPerPage = (page: number) => (page === 0 ? 15 : 14);
  // Layout: header, every page's pixels back to back, then each page's IFD followed by its out-of-line values.
  const pixelsEnd = 8 + depth * pageBytes;
  const ifdOffsets: number[] = [];
  let offset = pixelsEnd + (pixelsEnd & 1);
  for (let page = 0; page < depth; page++) {
    ifdOffsets.push(offset);
    offset += 2 + entriesPerPage(page) * 12 + 4 + 16 + (page === 0 ? descriptionBytes.length + (descriptionBytes.length & 1) : 0);
  }
  if (offset > 0xffffffff) throw new Error(`encodeLabelTiff: ${offset} bytes exceed a classic TIFF's 4 GiB`);

  const bytes = new Uint8Array(offset);
  const view = new DataView(bytes.buffer);
  bytes.set([0x49, 0x49]);
  view.setUint16(2, 42, true);
  view.setUint32(4, ifdOffsets[0], true);
  // Page z·layers + c holds slice z of layer c (channels fastest, as ImageJ orders hyperstacks).
  const plane = width * height;
  for (let c = 0; c < layers; c++) {
    for (let z = 0; z < slices; z++) {
      const from = (c * slices + z) * plane;
      const at = 8 + (z * layers + c) * plane * bytesPerSample;
      for (let i = 0; i < plane; i++) {
        if (uint16) view.setUint16(at + 2 * i, data[from + i], true);
        else view.setInt32(at + 4 * i, data[from + i], true);
      }
    }
  }
  for (let page = 0; page < depth; page++) {
    const ifd = ifdOffsets[page];
    let extra = ifd + 2 + entriesPerPage(page) * 12 + 4;
    const entries: [tag: number, type: number, count: number, value: number][] = [];
    const outOfLine = (tag: number, type: number, count: number, write: (at: number) => number) => {
      entries.push([tag, type, count, extra]);
      extra += write(extra);
      extra += extra & 1;
    };
    entries.push([254, LONG, 1, 0], [256, LONG, 1, width], [257, LONG, 1, height], [258, SHORT, 1, 8 * bytesPerSample],
      [259, SHORT, 1, 1], [262, SHORT, 1, 1]);
    if (page === 0) {
      outOfLine(270, ASCII, descriptionBytes.length, (at) => (bytes.set(descriptionBytes, at), descriptionBytes.length));
    }
    entries.push([273, LONG, 1, 8 + page * pageBytes], [277, SHORT, 1, 1], [278, LONG, 1, height], [279, LONG, 1, pageBytes]);
    for (const [tag, size] of [[282, spacingX], [283, spacingY]]) {
      outOfLine(tag, RATIONAL, 1, (at) => {
        const [numerator, denominator] = resolution(size);
        view.setUint32(at, numerator, true);
        view.setUint32(at + 4, denominator, true);
        return 8;
      });
    }
    entries.push([296, SHORT, 1, 1], [339, SHORT, 1, uint16 ? 1 : 2]);
    view.setUint16(ifd, entries.length, true);
    entries.forEach(([tag, type, count, value], i) => {
      const at = ifd + 2 + 12 * i;
      view.setUint16(at, tag, true);
      view.setUint16(at + 2, type, true);
      view.setUint32(at + 4, count, true);
      if (type === SHORT) view.setUint16(at + 8, value, true);
      else view.setUint32(at + 8, value, true);
    });
    view.setUint32(ifd + 2 + 12 * entries.length, page + 1 < depth ? ifdOffsets[page + 1] : 0, true);
  }
  return bytes;
}
