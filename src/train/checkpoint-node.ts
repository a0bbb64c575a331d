// Checkpoint files on disk (Node): atomic writes and the run folder the trainer keeps (a RunStore, run-store.ts).
//   RUN/config.json          what rebuilds the model and the data pipeline (RunConfig)
//   RUN/last.safetensors     weights after the last saved step
//   RUN/optimizer.safetensors Adam's moments at that step
//   RUN/state.json           step, best metric, seed (TrainState): with the two above, what --resume continues from
//   RUN/best.safetensors     weights at the best validation score
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readJSON, type RunStore } from './run-store.ts';

/** A temporary file beside `path` (same folder, so the rename is atomic), hidden from directory listings by name. */
export function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * Writes the files as one unit as far as a file system allows: every temporary file is written and flushed first,
 * then all are renamed over their targets in the given order (a crash leaves either old or new complete files, and
 * only the instants between the renames can mix them). Temporary files are removed when anything fails.
 */
export async function writeFilesAtomic(files: { path: string; data: Uint8Array | string }[]): Promise<void> {
  const staged = files.map((f) => ({ ...f, tmp: temporaryPath(f.path) }));
  try {
    for (const f of staged) await writeDurably(f.tmp, f.data);
    for (const f of staged) await rename(f.tmp, f.path);
  } catch (e) {
    await Promise.all(staged.map((f) => rm(f.tmp, { force: true })));
    throw e;
  }
}

export const writeFileAtomic = (path: string, data: Uint8Array | string): Promise<void> => writeFilesAtomic([{ path, data }]);

/** The files of a run folder; reads name the file in their errors. */
export class RunFolder implements RunStore {
  constructor(readonly dir: string) {}

  path(file: string): string {
    return join(this.dir, file);
  }

  has(file: string): boolean {
    this.recover();
    return existsSync(this.path(file));
  }

  async read(file: string): Promise<Uint8Array> {
    try {
      this.recover();
      return new Uint8Array(await readFile(this.path(file)));
    } catch (e) {
      throw new Error(`${this.path(file)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }

  readJSON<T>(file: string): Promise<T> {
    return readJSON<T>(this, file);
  }

  /**
   * Writes the named files as one unit: all are written and flushed under temporary names, then a journal naming them
   * (RUN/.commit.json, itself written atomically) commits the write, then they are renamed into place and the journal
   * removed. A process killed between the renames leaves the journal, and the next read or write of the folder
   * finishes the renames, so last.safetensors, optimizer.safetensors and state.json never disagree. The folder is
   * created first, and temporary files of these names that a killed process left uncommitted are removed.
   */
  async write(files: Record<string, Uint8Array | string>): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.recover();
    const names = [...Object.keys(files), JOURNAL].map((file) => `.${file}.`);
    const left = (await readdir(this.dir)).filter((n) => n.endsWith('.tmp') && names.some((p) => n.startsWith(p) && !n.startsWith(`${p}${process.pid}-`)));
    await Promise.all(left.map((n) => rm(this.path(n), { force: true })));
    const staged = Object.entries(files).map(([file, data]) => ({ file, data, tmp: temporaryPath(this.path(file)) }));
    try {
      for (const f of staged) await writeDurably(f.tmp, f.data);
    } catch (e) {
      await Promise.all(staged.map((f) => rm(f.tmp, { force: true })));
      throw e;
    }
    await writeFileAtomic(this.path(JOURNAL), JSON.stringify(staged.map((f) => [basename(f.tmp), f.file])));
    for (const f of staged) await rename(f.tmp, this.path(f.file));
    await rm(this.path(JOURNAL), { force: true });
  }

  /** Finishes a committed write that a killed process left half renamed (see write()). */
  private recover(): void {
    const journal = this.path(JOURNAL);
    if (!existsSync(journal)) return;
    const entries = JSON.parse(readFileSync(journal, 'utf8')) as [string, string][];
    for (const [tmp, file] of entries) if (existsSync(this.path(tmp))) renameSync(this.path(tmp), this.path(file));
    rmSync(journal, { force: true });
  }
}

/** The journal of a multi-file write in progress (RunFolder.write). */
const JOURNAL = '.commit.json';
