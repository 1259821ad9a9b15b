/**
 * The framing of a `.wandb` file (W&B's "transaction log"): a 7-byte header (`:W&B`, magic 0xBEE1 little-endian,
 * version byte 0), then LevelDB-style 32 KiB blocks of chunks. A chunk is a 7-byte header (CRC-32 little-endian,
 * length uint16 little-endian, type) and its payload; types FULL 1, FIRST 2, MIDDLE 3, LAST 4; a record is one FULL
 * chunk or FIRST, MIDDLE..., LAST. Chunks never cross a block boundary; fewer than 7 bytes left in a block are zero
 * padding. The checksum is plain CRC-32 (IEEE, zlib's) of the type byte and the payload, unmasked: what wandb-core's
 * leveldb writer uses with `CRCAlgoIEEE` (the Python client's datastore.py did the same). The first block holds the
 * file header, so block boundaries are at multiples of 32 KiB of the file.
 *
 * Damage is survived, as LevelDB's reader does: a bad checksum or an impossible chunk skips to the next block and
 * looks for the next FULL/FIRST chunk there (a warning with the byte offset); a file that ends inside a record (the
 * file of a killed process, or of a run still writing) ends the read with a warning, keeping everything before.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32 } from "node:zlib";
import { ImportError } from "./errors.js";

export const BLOCK_SIZE = 32 * 1024;
export const CHUNK_HEADER = 7;
export const FILE_HEADER = 7;
export const LOG_IDENT = ":W&B";
export const LOG_MAGIC = 0xbee1;
export const LOG_VERSION = 0;

const FULL = 1;
const FIRST = 2;
// MIDDLE = 3: neither starts nor ends a record
const LAST = 4;

/** Blocks read at once. */
const WINDOW_BLOCKS = 32;

export interface LogRecord {
  /** Byte offset of the record's first chunk header. */
  offset: number;
  /** The record's bytes; valid until the next record is asked for. */
  payload: Uint8Array;
}

export interface LogWarning {
  offset: number;
  message: string;
}

export interface LogReadStats {
  /** Bytes of the file when it was opened (what was read). */
  size: number;
  /** Offset just past the last complete record. */
  endOffset: number;
  records: number;
  /** Bytes skipped because of damage. */
  skippedBytes: number;
  torn: boolean;
}

/** The chunk checksum: CRC-32 (IEEE) of the type byte followed by the payload. */
export function chunkCrc(type: number, payload: Uint8Array): number {
  const head = crc32(TYPE_BYTES[type] ?? Uint8Array.of(type));
  // (Node 20's zlib.crc32 returns 0 for an empty view of a larger buffer, whatever the initial value)
  return payload.length === 0 ? head : crc32(payload, head);
}

const TYPE_BYTES = [0, 1, 2, 3, 4].map((t) => Uint8Array.of(t));

/** Checks the 7-byte file header; throws ImportError NOT_WANDB or NEWER_VERSION. Returns false for a torn header. */
export function checkHeader(head: Uint8Array, path: string): boolean {
  const ident = Buffer.from(LOG_IDENT, "latin1");
  const n = Math.min(head.length, FILE_HEADER);
  for (let i = 0; i < Math.min(n, 4); i++) {
    if (head[i] !== ident[i]) throw new ImportError("NOT_WANDB", `${path} is not a W&B log (no :W&B header)`);
  }
  if (n < FILE_HEADER) return false;
  const magic = head[4]! | (head[5]! << 8);
  if (magic !== LOG_MAGIC) {
    throw new ImportError("NOT_WANDB", `${path} is not a W&B log (bad header magic 0x${magic.toString(16)})`);
  }
  const version = head[6]!;
  if (version !== LOG_VERSION) {
    throw new ImportError(
      "NEWER_VERSION",
      `${path} is a W&B log of format version ${version}; this dr-wandb reads version ${LOG_VERSION} only (a newer wandb client wrote it: upgrade dr-wandb)`,
    );
  }
  return true;
}

/**
 * Reads the records of a `.wandb` file, in order. `onWarning` hears of every damage skipped; `stats` is filled in
 * as the read goes (complete once the iteration ends).
 */
export function* readLogFile(
  path: string,
  onWarning: (w: LogWarning) => void,
  stats: LogReadStats = { size: 0, endOffset: 0, records: 0, skippedBytes: 0, torn: false },
): Generator<LogRecord> {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    stats.size = size;
    const window = Buffer.allocUnsafe(BLOCK_SIZE * WINDOW_BLOCKS);
    /** File offset of window[0], and how many bytes of it are valid. */
    let base = 0;
    let valid = 0;
    const load = (at: number) => {
      base = at - (at % BLOCK_SIZE);
      valid = 0;
      const want = Math.min(window.length, size - base);
      while (valid < want) {
        const n = readSync(fd, window, valid, want - valid, base + valid);
        if (n === 0) break;
        valid += n;
      }
    };
    load(0);
    if (!checkHeader(window.subarray(0, Math.min(valid, FILE_HEADER)), path)) {
      stats.torn = size > 0;
      if (size > 0) onWarning({ offset: 0, message: `${path}: the file ends inside its header; nothing to read` });
      return;
    }
    stats.endOffset = FILE_HEADER;
    let pos = FILE_HEADER;
    /** Parts of the record being assembled (FIRST, MIDDLE...), and where it started; -1 when none. */
    let parts: Buffer[] = [];
    let recordStart = -1;
    /** After damage: MIDDLE/LAST chunks are skipped until the next FULL/FIRST. */
    let recovering = false;
    const damage = (at: number, what: string) => {
      const next = at - (at % BLOCK_SIZE) + BLOCK_SIZE;
      const lost = recordStart >= 0 ? ` (the record begun at byte ${recordStart} is lost)` : "";
      onWarning({
        offset: at,
        message: `${path}: ${what} at byte ${at}; skipped to the next block at byte ${Math.min(next, size)}${lost}`,
      });
      stats.skippedBytes += Math.min(next, size) - at;
      parts = [];
      recordStart = -1;
      recovering = true;
      return next;
    };
    while (pos < size) {
      const blockEnd = pos - (pos % BLOCK_SIZE) + BLOCK_SIZE;
      if (blockEnd - pos < CHUNK_HEADER) {
        pos = blockEnd;
        continue;
      }
      if (pos + CHUNK_HEADER > size) break; // a chunk header cut short: torn, below
      if (pos + CHUNK_HEADER > base + valid) load(pos);
      let o = pos - base;
      const checksum = window.readUInt32LE(o);
      const length = window.readUInt16LE(o + 4);
      const type = window[o + 6]!;
      if (checksum === 0 && length === 0 && type === 0) {
        // zeroed rest of a block (preallocated or padded); nothing here
        pos = blockEnd;
        continue;
      }
      const end = pos + CHUNK_HEADER + length;
      if (end > blockEnd || type < FULL || type > LAST) {
        pos = damage(pos, end > blockEnd ? "a chunk longer than its block" : `an unknown chunk type ${type}`);
        continue;
      }
      if (end > size) break; // the last chunk is cut short: torn, below
      if (end > base + valid) {
        load(pos);
        o = pos - base;
      }
      const payload = window.subarray(o + CHUNK_HEADER, o + CHUNK_HEADER + length);
      // the type byte and the payload are adjacent: one crc32 call over both (what chunkCrc computes)
      if (crc32(window.subarray(o + CHUNK_HEADER - 1, o + CHUNK_HEADER + length)) !== checksum) {
        pos = damage(pos, "a bad checksum");
        continue;
      }
      if (type === FULL || type === FIRST) {
        if (recordStart >= 0) {
          onWarning({ offset: recordStart, message: `${path}: the record begun at byte ${recordStart} never ended` });
        }
        recovering = false;
        if (type === FULL) {
          parts = [];
          recordStart = -1;
          stats.records++;
          stats.endOffset = end;
          pos = end;
          yield { offset: pos - CHUNK_HEADER - length, payload };
          continue;
        }
        recordStart = pos;
        parts = [Buffer.from(payload)];
      } else if (recovering || recordStart < 0) {
        // the rest of a record whose beginning was lost (already warned about)
        stats.skippedBytes += end - pos;
      } else {
        parts.push(Buffer.from(payload));
        if (type === LAST) {
          const at = recordStart;
          const whole = Buffer.concat(parts);
          parts = [];
          recordStart = -1;
          stats.records++;
          stats.endOffset = end;
          pos = end;
          yield { offset: at, payload: whole };
          continue;
        }
      }
      pos = end;
    }
    if (recordStart >= 0 || pos < size) {
      const at = recordStart >= 0 ? recordStart : pos;
      stats.torn = true;
      onWarning({
        offset: at,
        message: `${path}: the last record (at byte ${at}) is cut short (a killed process, or a run still writing); kept the ${stats.records} records before it`,
      });
    }
  } finally {
    closeSync(fd);
  }
}
