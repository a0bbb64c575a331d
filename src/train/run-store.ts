// Where a run's files live (pure TypeScript, every runtime): config.json, state.json and the safetensors checkpoints
// are named files of a RunStore. RunFolder (checkpoint-node.ts) keeps them in a folder on disk; MemoryStore keeps them
// in a Map, for tests and for browser or Deno programs that save them their own way.

/** The named files of one run. */
export interface RunStore {
  /** What messages call the run: its folder, or a name. */
  readonly dir: string;
  /** What messages call one of its files. */
  path(file: string): string;
  has(file: string): boolean | Promise<boolean>;
  /** The file's bytes; throws naming the file when it is missing. */
  read(file: string): Promise<Uint8Array>;
  /** Writes the named files, in order, as one unit as far as the storage allows. */
  write(files: Record<string, Uint8Array | string>): Promise<void>;
}

/** A run's files in memory; strings are stored UTF-8 encoded. */
export class MemoryStore implements RunStore {
  readonly files = new Map<string, Uint8Array>();

  constructor(readonly dir = 'memory') {}

  path(file: string): string {
    return `${this.dir}/${file}`;
  }

  has(file: string): boolean {
    return this.files.has(file);
  }

  async read(file: string): Promise<Uint8Array> {
    const data = this.files.get(file);
    if (!data) throw new Error(`${this.path(file)}: no such file`);
    return data;
  }

  async write(files: Record<string, Uint8Array | string>): Promise<void> {
    for (const [file, data] of Object.entries(files)) this.files.set(file, typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }
}

/** A JSON file of the store; errors name the file. */
export async function readJSON<T>(store: RunStore, file: string): Promise<T> {
  const text = new TextDecoder().decode(await store.read(file));
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${store.path(file)}: not valid JSON (${(e as Error).message})`);
  }
}

/** How a run's JSON files are written: indented, with a final newline. */
export const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
