// The `wgseg` command line: train, predict, eval, synth, import and app. Bad input (a flag, a file, a folder, a run config)
// is one line on stderr naming it and exit code 2; a training run that diverges exits 1, and so does a prediction in
// which some images failed (the others are written); anything unexpected exits 1 with its message (and its stack with
// WGSEG_DEBUG=1).
import type { Engine } from '../engine/engine.ts';
import type { ModelRegistry } from '../models/model.ts';
import { DataError } from '../train/io-node.ts';
import { ConfigError } from '../train/run.ts';
import { app, appHelp } from './app.ts';
import { UsageError } from './args.ts';
import { evalHelp, evaluateFolders } from './eval.ts';
import { importHelp, importModel } from './import.ts';
import { predict, predictHelp } from './predict.ts';
import { synth, synthHelp } from './synth.ts';
import { train, trainHelp } from './train.ts';

export interface Context {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  registry: ModelRegistry;
  /** The GPU engine, created on first use (commands that fail on their arguments never start the GPU). */
  engine(): Promise<Engine>;
}

const commands: Record<string, { run: (argv: string[], ctx: Context) => Promise<number>; help: string }> = {
  train: { run: train, help: trainHelp },
  predict: { run: predict, help: predictHelp },
  eval: { run: evaluateFolders, help: evalHelp },
  synth: { run: synth, help: synthHelp },
  import: { run: importModel, help: importHelp },
  app: { run: app, help: appHelp },
};

function help(registry: ModelRegistry): string {
  const models = Object.keys(registry.factories).map((m) => {
    const presets = Object.keys(registry.presets[m] ?? {});
    return `  ${m}${presets.length ? ` (presets: ${presets.join(', ')})` : ''}`;
  });
  return `wgseg: biomedical instance segmentation on WebGPU

Usage:
  wgseg train --model NAME --data DIR --out RUN [options]   train (or --resume) a model
  wgseg predict --model RUN --input DIR --out DIR           label every image of a folder
  wgseg eval --gt DIR --pred DIR                            score predictions, one JSON line
  wgseg synth --out DIR [--ndim 2|3]                         write a synthetic dataset to try the others on
  wgseg import --from embedseg MODEL --out RUN              a run folder from a model EmbedSeg's PyTorch code trained
  wgseg app [--port N]                                      the browser app: drop an image, see its instances

Models:
${models.join('\n')}

Run wgseg COMMAND --help for a command's options.`;
}

/** Runs one command line; returns the exit code. `context` replaces the process streams, the models or the engine. */
export async function main(argv: string[], context: Partial<Context> = {}): Promise<number> {
  let engine: Promise<Engine> | null = null;
  const ctx: Context = {
    stdout: context.stdout ?? process.stdout,
    stderr: context.stderr ?? process.stderr,
    registry: context.registry ?? (await import('../models/registry.ts')).registry,
    engine: context.engine ?? (() => (engine ??= import('../node.ts').then((m) => m.createNodeEngine()))),
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    ctx.stdout.write(`${help(ctx.registry)}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    ctx.stderr.write(`wgseg: unknown command "${name}" (${Object.keys(commands).join(', ')}; see wgseg --help)\n`);
    return 2;
  }
  // Every command's --help, before its own parsing can fail on a missing option.
  if (rest.includes('--help') || rest.includes('-h')) {
    ctx.stdout.write(`${command.help}\n`);
    return 0;
  }
  try {
    return await command.run(rest, ctx);
  } catch (e) {
    const err = e as Error;
    if (e instanceof UsageError || e instanceof DataError || e instanceof ConfigError) {
      ctx.stderr.write(`wgseg ${name}: ${err.message}\n`);
      return 2;
    }
    ctx.stderr.write(`wgseg ${name}: ${process.env.WGSEG_DEBUG ? err.stack : `${err.message} (WGSEG_DEBUG=1 shows where)`}\n`);
    return 1;
  } finally {
    if (engine) {
      const e = await (engine as Promise<Engine>).catch(() => null);
      await e?.sync().catch(() => {});
      e?.destroy();
    }
  }
}
