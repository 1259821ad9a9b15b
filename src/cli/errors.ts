/**
 * Exit codes and the one place that turns any error into one clear line. Commands throw; only bin.ts exits.
 * The codes are documented in README.md ("Exit codes").
 */
import { CodedError } from "../model/errors.js";

export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  AUTH: 3,
  NOT_FOUND: 4,
  NETWORK: 5,
  OUTPUT: 6,
  ARCHIVE: 7,
  DATABASE: 8,
  PROTOCOL: 9,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that already knows its exit code and its one-line message. */
export class ExitError extends CodedError<ExitCode> {
  override name = "ExitError";
  /** The process exit code (the error's `code`). */
  get exitCode(): ExitCode {
    return this.code;
  }
}

export function usage(message: string): ExitError {
  return new ExitError(EXIT.USAGE, message);
}

interface Coded {
  name?: string;
  code?: string;
  message?: string;
}

const FS_OUTPUT_CODES = new Set([
  "EACCES",
  "EPERM",
  "EROFS",
  "ENOSPC",
  "EDQUOT",
  "ENOTDIR",
  "EISDIR",
  "EEXIST",
  "EMFILE",
]);

function oneLine(s: string): string {
  const line = s.split("\n")[0]!.trim();
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

/** Maps any thrown value to an exit code and a single line (without a stack trace). */
export function describeError(err: unknown): { exitCode: ExitCode; message: string } {
  if (err instanceof ExitError) return { exitCode: err.exitCode, message: oneLine(err.message) };
  const e = (typeof err === "object" && err !== null ? err : { message: String(err) }) as Coded;
  const msg = oneLine(e.message ?? String(err));
  if (e.name === "WandbError" || e.name === "NotFoundError") {
    switch (e.code) {
      case "AUTH":
      case "CONFIG_MISSING_KEY":
        return { exitCode: EXIT.AUTH, message: msg };
      case "CONFIG":
        return { exitCode: /key/i.test(msg) ? EXIT.AUTH : EXIT.USAGE, message: msg };
      case "NOT_FOUND":
        return { exitCode: EXIT.NOT_FOUND, message: msg };
      case "PROTOCOL":
      case "GRAPHQL":
        return { exitCode: EXIT.PROTOCOL, message: msg };
      case "BAD_REQUEST":
        return { exitCode: EXIT.USAGE, message: msg };
      default:
        return { exitCode: EXIT.NETWORK, message: msg };
    }
  }
  if (e.name === "ArchiveError") {
    switch (e.code) {
      case "BAD_URL":
        return { exitCode: EXIT.USAGE, message: msg };
      case "CONNECT":
      case "AUTH":
      case "CREATE_DB":
        return { exitCode: EXIT.DATABASE, message: msg };
      case "QUERY":
        return { exitCode: EXIT.USAGE, message: msg };
      default:
        return { exitCode: EXIT.ARCHIVE, message: msg };
    }
  }
  if (e.name === "JsonSyntaxError")
    return { exitCode: EXIT.PROTOCOL, message: `malformed JSON from the server: ${msg}` };
  if (typeof e.code === "string" && FS_OUTPUT_CODES.has(e.code)) {
    const path = (err as { path?: string }).path;
    const what =
      e.code === "ENOSPC" || e.code === "EDQUOT"
        ? "no space left on the device"
        : e.code === "EACCES" || e.code === "EPERM" || e.code === "EROFS"
          ? "permission denied"
          : e.code === "ENOTDIR"
            ? "a path component is not a folder"
            : e.code === "EISDIR"
              ? "is a folder"
              : e.code === "EMFILE"
                ? "too many open files"
                : "already exists";
    return { exitCode: EXIT.OUTPUT, message: `cannot write ${path ?? "the output"}: ${what}` };
  }
  return { exitCode: EXIT.INTERNAL, message: `internal error: ${msg}` };
}
