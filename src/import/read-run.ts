/**
 * Reading a run's files record by record into a RunLog: `readRun` (every history row an object, to the RunLog's
 * spool) and `readRunText` (plain rows as text row files, src/import/text-rows.ts; the rest as readRun does).
 */
import type { TextRowsFile } from "../archive/index.js";
import { type LogReadStats, readLogFile } from "./log-reader.js";
import { decodePeek, decodeRecord, type PbRecordPeek } from "./proto.js";
import { RunLog } from "./run-log.js";
import type { TextRows } from "./text-rows.js";

/** Decodes one record whole and folds it in, as readRun does (a record that does not decode or parse: a warning). */
function foldRecord(log: RunLog, path: string, offset: number, payload: Uint8Array, warn: (m: string) => void): void {
  let rec: ReturnType<typeof decodeRecord>;
  try {
    rec = decodeRecord(payload);
  } catch (e) {
    warn(`${path}: the record at byte ${offset} does not decode (${(e as Error).message}); skipped`);
    return;
  }
  try {
    log.add(rec);
  } catch (e) {
    warn(`${path}: the record at byte ${offset} holds a value that does not parse (${(e as Error).message}); skipped`);
  }
}

function newStats(): LogReadStats {
  return { size: 0, endOffset: 0, records: 0, skippedBytes: 0, torn: false };
}

/** Reads every record of a run's files into one RunLog (rows before `fromStep` only counted). */
export function readRun(paths: string[], fromStep: number, warn: (m: string) => void, memoryCells?: number): RunLog {
  const log = new RunLog(memoryCells);
  log.fromStep = fromStep;
  for (const path of paths) {
    for (const r of readLogFile(path, (w) => warn(w.message), newStats())) {
      foldRecord(log, path, r.offset, r.payload, warn);
    }
    log.flushHistory();
  }
  return log;
}

/**
 * readRun with the plain history rows as text row files: reads `log`'s files while iterated, yielding a file each
 * time `rows` is full and the last one (maybe empty) at the end; the other rows go to `log.history` as readRun's.
 * Summaries are folded from a peek decode (history items or summary only); every other record is decoded whole.
 */
export function* readRunText(
  paths: string[],
  log: RunLog,
  rows: TextRows,
  warn: (m: string) => void,
): Generator<TextRowsFile> {
  for (const path of paths) {
    for (const r of readLogFile(path, (w) => warn(w.message), newStats())) {
      let peek: PbRecordPeek | null;
      try {
        peek = decodePeek(r.payload);
      } catch {
        peek = null; // the whole decode below says why
      }
      // (a message field unset is null: cheaper than the oneof getter recordType)
      if (peek !== null && peek.summary != null) {
        log.records++;
        log.addSummary(peek.summary);
        continue;
      }
      if (peek !== null && peek.history != null) {
        let taken = false;
        try {
          taken = rows.add(peek.history?.item ?? [], log);
        } catch {
          taken = false; // a value that does not parse: the object path warns about it
        }
        if (taken) {
          log.records++;
          if (rows.full) yield rows.take();
          continue;
        }
      }
      foldRecord(log, path, r.offset, r.payload, warn);
    }
    log.flushHistory();
  }
  yield rows.take();
}
