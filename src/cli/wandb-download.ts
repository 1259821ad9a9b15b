#!/usr/bin/env node
/** The `wandb-download ENTITY PROJECT OUTPUT_DIR` command, as the original dr_wandb had it. */
import { Command } from "commander";
import "./gc-policy.js";
import "./allocator-policy.js";
import { startMemoryTrace } from "../model/memory-trace.js";
import { completionScript, detectShell, installCompletion } from "./completion.js";
import { hideSecretsFromProcessTitle, makeContext, runProgram } from "./main.js";
import { downloadCommandSpec, VERSION } from "./program.js";

const argv = process.argv.slice(2);
startMemoryTrace();
hideSecretsFromProcessTitle("wandb-download", argv);
const ctx = makeContext({ argv });
const program = downloadCommandSpec(new Command("wandb-download").version(VERSION), ctx);

process.on("SIGINT", () => {
  process.stderr.write("wandb-download: interrupted; earlier output files are left as they were\n");
  process.exit(130);
});

if (argv.includes("--show-completion")) {
  process.stdout.write(completionScript(detectShell(), program));
} else if (argv.includes("--install-completion")) {
  const file = await installCompletion(detectShell(), program);
  process.stdout.write(`completion installed in ${file}\n`);
} else {
  const code = await runProgram(program, ctx, argv, "wandb-download");
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3000).unref();
}
