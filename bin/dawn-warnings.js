// Dawn's informational warnings, dropped from the stderr of the `wgseg` command's child process (bin/wgseg.js says
// why). Plain JavaScript, like bin/wgseg.js, so that the command's first process loads no TypeScript.

/** The lines Dawn prints that inform and need no action: the limits it clamps (lavapipe, RADV). */
const informational = [
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/,
];
const prefix = 'Warning: maxDynamic';

/**
 * Passes text written in chunks on to `write`, without the lines that are one of Dawn's informational warnings. A
 * partial line is held back only while it could still become one, so a progress bar redrawn with `\r` shows at once.
 * @param {(text: string) => void} write
 * @returns {{ push(chunk: string): void, end(): void }}
 */
export function dawnWarningFilter(write) {
  let held = '';
  let midLine = false;
  return {
    push(chunk) {
      const text = held + chunk;
      held = '';
      let out = '';
      let start = 0;
      while (start < text.length) {
        const newline = text.indexOf('\n', start);
        if (newline < 0) {
          const rest = text.slice(start);
          if (!midLine && (prefix.startsWith(rest) || rest.startsWith(prefix))) held = rest;
          else out += rest;
          midLine = held === '';
          break;
        }
        const line = text.slice(start, newline);
        if (midLine || !informational.some((re) => re.test(line))) out += `${line}\n`;
        midLine = false;
        start = newline + 1;
      }
      if (out) write(out);
    },
    end() {
      if (held) write(held);
      held = '';
    },
  };
}
