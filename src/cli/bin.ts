#!/usr/bin/env node
/** The `dr-wandb` command. The only place (with wandb-download.ts) that exits the process. */
import "./gc-policy.js";
import "./allocator-policy.js";
import { startMemoryTrace } from "../model/memory-trace.js";
import { hideSecretsFromProcessTitle, makeContext, runProgram } from "./main.js";
import { buildProgram } from "./program.js";

startMemoryTrace();
hideSecretsFromProcessTitle("dr-wandb", process.argv.slice(2));
const ctx = makeContext({ argv: process.argv.slice(2) });
let interrupted = false;
process.on("SIGINT", () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write("dr-wandb: interrupted; runs already committed stay in the archive\n");
  process.exit(130);
});
const code = await runProgram(buildProgram(ctx), ctx, process.argv.slice(2), "dr-wandb");
process.exitCode = code;
// A stray keep-alive socket must not hold the process open once the work is done.
setTimeout(() => process.exit(code), 3000).unref();
