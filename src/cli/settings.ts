/**
 * Settings folded in one place, with the precedence the original tool had: flag, then environment, then a .env
 * file in the working directory, then the default.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";

export interface SettingsSource {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export class Settings {
  private readonly dotenv: Record<string, string>;

  constructor(private readonly src: SettingsSource) {
    this.dotenv = readDotEnv(src.cwd);
  }

  get cwd(): string {
    return this.src.cwd;
  }

  /** The process environment alone (what the modules reading tuning variables see; no .env values). */
  get environment(): NodeJS.ProcessEnv {
    return this.src.env;
  }

  /** The value of a variable from the environment, else from .env, else undefined. */
  get(name: string): string | undefined {
    const v = this.src.env[name];
    if (v !== undefined && v !== "") return v;
    const d = this.dotenv[name];
    return d !== undefined && d !== "" ? d : undefined;
  }

  /** flag ?? env ?? .env ?? fallback */
  pick<T extends string | undefined>(flag: string | undefined, name: string, fallback: T): string | T {
    return flag ?? this.get(name) ?? fallback;
  }

  /** The environment with .env values filled in below real environment values (for the W&B client). */
  merged(): NodeJS.ProcessEnv {
    return { ...this.dotenv, ...this.src.env };
  }
}

function readDotEnv(cwd: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(join(cwd, ".env"), "utf8");
  } catch {
    return {};
  }
  try {
    return parseEnv(text) as Record<string, string>;
  } catch {
    return {};
  }
}
