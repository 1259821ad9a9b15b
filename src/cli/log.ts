/**
 * What the CLI tells the user. Logs go to stderr in the original tool's format
 * ("2025-11-10 21:47:54 - INFO - message"); on a terminal, progress bars replace the per-run lines.
 * stdout carries only data (--json summaries, query results).
 */
import { MultiBar, Presets, type SingleBar } from "cli-progress";

export type Verbosity = "quiet" | "normal" | "verbose";

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export class Logger {
  constructor(
    readonly verbosity: Verbosity,
    private readonly out: NodeJS.WritableStream = process.stderr,
  ) {}

  private write(level: string, message: string): void {
    for (const line of message.split("\n")) this.out.write(`${stamp()} - ${level} - ${line}\n`);
  }

  info(message: string): void {
    if (this.verbosity !== "quiet") this.write("INFO", message);
  }

  debug(message: string): void {
    if (this.verbosity === "verbose") this.write("DEBUG", message);
  }

  warn(message: string): void {
    this.write("WARNING", message);
  }
}

/** Progress bars for runs and rows, on a TTY only. */
export class Progress {
  private readonly multi: MultiBar;
  private runs: SingleBar | undefined;
  private rows = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.multi = new MultiBar(
      {
        stream: this.stream,
        hideCursor: true,
        clearOnComplete: false,
        format: " {bar} {value}/{total} runs | {rows} rows | {rate} runs/s | ETA {eta_formatted} | {last}",
        etaBuffer: 50,
      },
      Presets.shades_classic,
    );
  }

  static enabled(stream: NodeJS.WriteStream = process.stderr): boolean {
    return Boolean(stream.isTTY) && !process.env.CI;
  }

  start(total: number): void {
    this.runs = this.multi.create(total, 0, { rows: 0, rate: "0.0", last: "" });
  }

  private startedAt = Date.now();

  tick(rows: number, last: string): void {
    this.rows += rows;
    const secs = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const value = (this.runs?.getProgress() ?? 0) * (this.runs?.getTotal() ?? 0) + 1;
    this.runs?.increment(1, { rows: this.rows, rate: (value / secs).toFixed(1), last: last.slice(0, 40) });
  }

  setTotal(total: number): void {
    this.runs?.setTotal(total);
  }

  stop(): void {
    this.multi.stop();
  }
}
