/** `dr-wandb serve`: the read-only browser viewer over the archive (src/serve/). Runs until interrupted. */
import { spawn } from "node:child_process";
import type { CommandContext } from "../context.js";
import { usage } from "../errors.js";
import { type ArchiveFlags, archiveSettings } from "../flags.js";

export interface ServeFlags extends ArchiveFlags {
  host: string;
  port: number;
  token?: string;
  open?: boolean;
}

function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === "darwin"
      ? ["open", [url]]
      : process.platform === "win32"
        ? ["cmd", ["/c", "start", "", url]]
        : ["xdg-open", [url]];
  try {
    const child = spawn(cmd, args, { stdio: "ignore", detached: true });
    child.on("error", () => undefined);
    child.unref();
  } catch {
    // no browser opener on this machine: the URL is printed anyway
  }
}

export async function serveCommand(f: ServeFlags, ctx: CommandContext): Promise<void> {
  if (f.token !== undefined && f.token.length < 16) throw usage("--token must be at least 16 characters");
  const { outputDir, dbUrl } = archiveSettings(f, ctx);
  const { openSource } = await import("../../serve/source.js");
  const { startServer } = await import("../../serve/server.js");
  const source = await openSource({ dbUrl, outputDir });
  let running: Awaited<ReturnType<typeof startServer>>;
  try {
    running = await startServer({ source, outputDir, host: f.host, port: f.port, token: f.token });
  } catch (e) {
    await source.close();
    const code = (e as { code?: string }).code;
    if (code === "EADDRINUSE") throw usage(`port ${f.port} on ${f.host} is already in use (try --port 0)`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw usage(`cannot listen on host ${f.host}`);
    throw e;
  }
  ctx.stderr.write(`dr-wandb: serving ${source.location} (${source.kind}, read-only)\n`);
  if (running.token && f.token === undefined) ctx.stderr.write(`dr-wandb: access token: ${running.token}\n`);
  ctx.stdout.write(`${running.openUrl}\n`);
  if (f.open) openBrowser(running.openUrl);
  await new Promise<void>((resolve) => {
    running.server.on("close", () => resolve());
  });
  await source.close();
}
