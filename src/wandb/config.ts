/**
 * Where the API key and base URL come from, in the SDK's order:
 *   key:      explicit option > WANDB_API_KEY > WANDB_API_KEY in ./.env > netrc ($NETRC, ~/.netrc, ~/_netrc;
 *             `machine <host[:port] of the base URL>`, as `wandb login` writes it)
 *   base URL: explicit option > WANDB_BASE_URL > WANDB_BASE_URL in ./.env > `base_url` in the [default] section
 *             of $WANDB_CONFIG_DIR/settings (else ~/.config/wandb/settings) > https://api.wandb.ai
 * Nothing here prints; warnings are returned. The key is registered for redaction and kept off enumerable fields.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { WandbError } from "./errors.js";
import { redact, registerSecret } from "./redact.js";

export const DEFAULT_BASE_URL = "https://api.wandb.ai";

export interface ResolveConfigOptions {
  apiKey?: string;
  baseUrl?: string;
  /** Allow plain http to a host that is not loopback. */
  insecure?: boolean;
  /** Environment to read (default process.env). */
  env?: Record<string, string | undefined>;
  /** Where to look for .env (default process.cwd()). */
  cwd?: string;
  /** Home directory for ~/.netrc and ~/.config/wandb (default $HOME from `env`, else os.homedir()). */
  home?: string;
}

export type ApiKeySource = "option" | "env" | "dotenv" | "netrc";
export type BaseUrlSource = "option" | "env" | "dotenv" | "settings" | "default";

export interface WandbConfig {
  /** Not enumerable: JSON.stringify/console.log of the config never shows it. */
  readonly apiKey: string;
  /** No trailing slash. */
  readonly baseUrl: string;
  readonly apiKeySource: ApiKeySource;
  /** The file the key came from (.env or netrc path), if any. */
  readonly apiKeyFile: string | undefined;
  readonly baseUrlSource: BaseUrlSource;
  readonly insecure: boolean;
  /** Problems worth telling the user about (e.g. a netrc readable by others). Never contains the key. */
  readonly warnings: string[];
}

const HOW_TO_SET_KEY =
  "Set WANDB_API_KEY, run `wandb login` (writes ~/.netrc), or pass --api-key (find your key at https://wandb.ai/authorize)";

export function resolveConfig(options: ResolveConfigOptions = {}): WandbConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const home = options.home ?? nonEmpty(env.HOME) ?? homedir();
  const warnings: string[] = [];
  const dotenv = readDotEnv(join(cwd, ".env"));

  // Base URL first: the netrc lookup depends on its host.
  let baseUrlRaw: string;
  let baseUrlSource: BaseUrlSource;
  const settingsBase = () => readSettingsBaseUrl(settingsPath(env, home));
  if (nonEmpty(options.baseUrl)) {
    baseUrlRaw = options.baseUrl!;
    baseUrlSource = "option";
  } else if (nonEmpty(env.WANDB_BASE_URL)) {
    baseUrlRaw = env.WANDB_BASE_URL!;
    baseUrlSource = "env";
  } else if (nonEmpty(dotenv?.WANDB_BASE_URL)) {
    baseUrlRaw = dotenv!.WANDB_BASE_URL!;
    baseUrlSource = "dotenv";
  } else {
    const s = settingsBase();
    if (s) {
      baseUrlRaw = s;
      baseUrlSource = "settings";
    } else {
      baseUrlRaw = DEFAULT_BASE_URL;
      baseUrlSource = "default";
    }
  }
  const insecure = options.insecure ?? false;
  const baseUrl = normaliseBaseUrl(baseUrlRaw, insecure, baseUrlSource);
  const url = new URL(baseUrl);

  let apiKey: string | undefined;
  let apiKeySource: ApiKeySource | undefined;
  let apiKeyFile: string | undefined;
  if (nonEmpty(options.apiKey)) {
    apiKey = options.apiKey!.trim();
    apiKeySource = "option";
  } else if (nonEmpty(env.WANDB_API_KEY)) {
    apiKey = env.WANDB_API_KEY!.trim();
    apiKeySource = "env";
  } else if (nonEmpty(dotenv?.WANDB_API_KEY)) {
    apiKey = dotenv!.WANDB_API_KEY!.trim();
    apiKeySource = "dotenv";
    apiKeyFile = join(cwd, ".env");
  } else {
    const found = findNetrcKey(netrcCandidates(env, home), url);
    if (found) {
      apiKey = found.password;
      apiKeySource = "netrc";
      apiKeyFile = found.path;
      if (found.mode !== undefined && (found.mode & 0o077) !== 0) {
        warnings.push(
          `${found.path} is readable by other users (mode ${(found.mode & 0o777).toString(8)}); run \`chmod 600 ${found.path}\``,
        );
      }
    }
  }
  if (!apiKey || !apiKeySource) {
    throw new WandbError({
      code: "CONFIG",
      operation: "config",
      reason: `no W&B API key found for ${url.host} (looked at the apiKey option, WANDB_API_KEY, ${join(cwd, ".env")} and netrc machine ${url.host})`,
      hint: HOW_TO_SET_KEY,
    });
  }
  registerSecret(apiKey);
  const config = {
    baseUrl,
    apiKeySource,
    apiKeyFile,
    baseUrlSource,
    insecure,
    warnings: warnings.map((w) => redact(w)),
  };
  Object.defineProperty(config, "apiKey", { value: apiKey, enumerable: false, writable: false });
  return config as WandbConfig;
}

/** Validates a base URL, strips trailing slashes and refuses plain http to a non-loopback host unless insecure. */
export function normaliseBaseUrl(raw: string, insecure = false, source = "option"): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new WandbError({
      code: "CONFIG",
      operation: "config",
      reason: `the W&B base URL from ${source} is not a URL: ${JSON.stringify(raw)}`,
    });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new WandbError({
      code: "CONFIG",
      operation: "config",
      reason: `the W&B base URL must be http(s), got ${url.protocol}`,
    });
  }
  if (url.username || url.password) {
    throw new WandbError({
      code: "CONFIG",
      operation: "config",
      reason: "the W&B base URL must not contain credentials",
    });
  }
  if (url.protocol === "http:" && !insecure && !isLoopbackHost(url.hostname)) {
    throw new WandbError({
      code: "CONFIG",
      operation: "config",
      reason: `refusing to send the API key over plain http to ${url.host}`,
      hint: "Use https, or pass --insecure if you really mean it",
    });
  }
  url.search = "";
  url.hash = "";
  return url.toString().replace(/\/+$/, "");
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  if (h.startsWith("::ffff:127.")) return true;
  return false;
}

function nonEmpty(s: string | undefined | null): string | undefined {
  return s !== undefined && s !== null && s.trim() !== "" ? s : undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function readDotEnv(path: string): Record<string, string | undefined> | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    return parseEnv(text) as Record<string, string | undefined>;
  } catch {
    return undefined;
  }
}

function settingsPath(env: Record<string, string | undefined>, home: string): string {
  const dir = nonEmpty(env.WANDB_CONFIG_DIR) ?? join(home, ".config", "wandb");
  return join(dir, "settings");
}

/** `base_url` from the [default] section of the INI settings file `wandb login --host` writes. */
export function readSettingsBaseUrl(path: string): string | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  let section = "";
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.trim();
      continue;
    }
    if (section !== "default") continue;
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (kv && kv[1]!.trim() === "base_url") return nonEmpty(kv[2]!.trim());
  }
  return undefined;
}

function netrcCandidates(env: Record<string, string | undefined>, home: string): string[] {
  const explicit = nonEmpty(env.NETRC);
  if (explicit) return [explicit];
  return [join(home, ".netrc"), join(home, "_netrc")];
}

interface NetrcEntry {
  machine: string | null; // null = `default`
  login?: string;
  password?: string;
}

/** Parses a netrc file (machine/default/login/password/account; macdef bodies skipped; quoted values). */
export function parseNetrc(text: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const lines = text.split(/\r?\n/);
  const tokens: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trimStart().startsWith("#")) continue;
    const lineTokens = tokenize(line);
    for (let j = 0; j < lineTokens.length; j++) {
      if (lineTokens[j] === "macdef") {
        // Skip the macro body: everything up to the next empty line.
        i++;
        while (i < lines.length && lines[i]!.trim() !== "") i++;
        break;
      }
      tokens.push(lineTokens[j]!);
    }
  }
  let cur: NetrcEntry | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === "machine") {
      cur = { machine: tokens[++i] ?? "" };
      entries.push(cur);
    } else if (t === "default") {
      cur = { machine: null };
      entries.push(cur);
    } else if (cur && (t === "login" || t === "user")) cur.login = tokens[++i];
    else if (cur && t === "password") cur.password = tokens[++i];
    else if (cur && t === "account") i++;
  }
  return entries;
}

function tokenize(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    let tok = "";
    while (i < line.length && line[i] !== " " && line[i] !== "\t") {
      const ch = line[i]!;
      if (ch === "'" || ch === '"') {
        // shell-style quoting, as wandb's netrc writer uses shlex.quote
        const end = line.indexOf(ch, i + 1);
        if (end < 0) {
          tok += line.slice(i + 1);
          i = line.length;
        } else {
          tok += line.slice(i + 1, end);
          i = end + 1;
        }
      } else if (ch === "\\" && i + 1 < line.length) {
        tok += line[i + 1];
        i += 2;
      } else {
        tok += ch;
        i++;
      }
    }
    out.push(tok);
  }
  return out;
}

function findNetrcKey(
  paths: string[],
  url: URL,
): { password: string; path: string; mode: number | undefined } | undefined {
  for (const path of paths) {
    const text = readText(path);
    if (text === undefined) continue;
    const entries = parseNetrc(text);
    const wanted = [url.host.toLowerCase(), url.hostname.toLowerCase()];
    let hit: NetrcEntry | undefined;
    for (const w of wanted) {
      hit = entries.find((e) => e.machine !== null && e.machine.toLowerCase() === w && e.password);
      if (hit) break;
    }
    hit ??= entries.find((e) => e.machine === null && e.password);
    let mode: number | undefined;
    try {
      mode = statSync(path).mode;
    } catch {
      mode = undefined;
    }
    if (hit?.password) return { password: hit.password, path, mode };
    // Python's netrc reads only the first existing file; so do we.
    return undefined;
  }
  return undefined;
}
