/** A one-line progress bar on stderr (plain milestone lines when not a TTY). */

/** Counts finished requests of one run. */
export interface Progress {
  tick(): void;
  done(): void;
}

const WIDTH = 30;

/** A progress bar for `total` requests labelled `label`; silent when `enabled` is false. */
export function progressBar(label: string, total: number, enabled = true, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || total <= 0) return { tick() {}, done() {} };
  let n = 0;
  let lastDraw = 0;
  let lastQuarter = 0;
  const started = performance.now();
  const draw = () => {
    const filled = Math.round((n / total) * WIDTH);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    stream.write(`\r  ${label} [${"#".repeat(filled)}${".".repeat(WIDTH - filled)}] ${n}/${total} ${secs}s `);
  };
  return {
    tick() {
      n++;
      if (stream.isTTY) {
        const now = performance.now();
        if (now - lastDraw > 100 || n === total) {
          lastDraw = now;
          draw();
        }
      } else if (Math.floor((n / total) * 4) > lastQuarter) {
        lastQuarter = Math.floor((n / total) * 4);
        stream.write(`  ${label}: ${n}/${total}\n`);
      }
    },
    done() {
      if (stream.isTTY) {
        draw();
        stream.write("\n");
      }
    },
  };
}
