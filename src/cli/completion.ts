/** Shell completion scripts generated from the command table, so they never drift from the real options. */
import { appendFile, mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Command } from "commander";

export type Shell = "bash" | "zsh" | "fish";

export function detectShell(env: NodeJS.ProcessEnv = process.env): Shell {
  const sh = env.SHELL ?? "";
  return sh.endsWith("zsh") ? "zsh" : sh.endsWith("fish") ? "fish" : "bash";
}

function optionsOf(cmd: Command): string[] {
  const out: string[] = [];
  for (const o of cmd.options) {
    if (o.long) out.push(o.long);
    if (o.short) out.push(o.short);
  }
  return [...out, "--help"];
}

/** A completion script for `program` (with subcommands) or a single command (wandb-download). */
export function completionScript(shell: Shell, program: Command): string {
  const name = program.name();
  const fn = `_${name.replace(/[^a-zA-Z0-9]/g, "_")}_complete`;
  const subs = program.commands.map((c) => c.name());
  if (shell === "fish") {
    const lines = [`# fish completion for ${name}`];
    if (subs.length > 0) {
      lines.push(`complete -c ${name} -f -n "__fish_use_subcommand" -a "${subs.join(" ")}"`);
      for (const c of program.commands) {
        for (const o of optionsOf(c).filter((x) => x.startsWith("--"))) {
          lines.push(`complete -c ${name} -n "__fish_seen_subcommand_from ${c.name()}" -l ${o.slice(2)}`);
        }
      }
    } else {
      for (const o of optionsOf(program).filter((x) => x.startsWith("--")))
        lines.push(`complete -c ${name} -l ${o.slice(2)}`);
    }
    return `${lines.join("\n")}\n`;
  }
  const cases = program.commands.map((c) => `    ${c.name()}) opts="${optionsOf(c).join(" ")}" ;;`).join("\n");
  const body =
    subs.length > 0
      ? `  local sub="" i
  for ((i=1; i<COMP_CWORD; i++)); do case "\${COMP_WORDS[i]}" in -*) ;; *) sub="\${COMP_WORDS[i]}"; break ;; esac; done
  local opts=""
  case "$sub" in
${cases}
    *) COMPREPLY=( $(compgen -W "${subs.join(" ")} --help --version" -- "$cur") ); return 0 ;;
  esac`
      : `  local opts="${optionsOf(program).join(" ")}"`;
  const bash = `# bash completion for ${name}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
${body}
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); else COMPREPLY=( $(compgen -f -- "$cur") ); fi
}
complete -F ${fn} ${name}
`;
  if (shell === "zsh") return `# zsh completion for ${name}\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
  return bash;
}

/** Appends the completion script to the shell's startup file (as Typer's --install-completion does). */
export async function installCompletion(shell: Shell, program: Command, home = homedir()): Promise<string> {
  const file =
    shell === "zsh"
      ? join(home, ".zshrc")
      : shell === "fish"
        ? join(home, ".config", "fish", "completions", `${program.name()}.fish`)
        : join(home, ".bashrc");
  await mkdir(dirname(file), { recursive: true });
  await appendFile(file, `\n${completionScript(shell, program)}`);
  return file;
}
