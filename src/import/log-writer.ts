/**
 * A writer of the `.wandb` framing (header, 32 KiB blocks, FULL/FIRST/MIDDLE/LAST chunks, CRC-32), for tests and
 * the import bench only: real logs come from the wandb client. It lays chunks out as wandb-core's leveldb writer
 * does, so the reader is tested against the same layout.
 */
import { BLOCK_SIZE, CHUNK_HEADER, chunkCrc, LOG_IDENT, LOG_MAGIC, LOG_VERSION } from "./log-reader.js";
import { encodeRecord } from "./proto.js";

export class LogWriter {
  private readonly parts: Buffer[] = [];
  private pos = 0;

  constructor(version = LOG_VERSION) {
    const head = Buffer.alloc(7);
    head.write(LOG_IDENT, 0, "latin1");
    head.writeUInt16LE(LOG_MAGIC, 4);
    head[6] = version;
    this.push(head);
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.pos += b.length;
  }

  /** Byte offset where the next record starts (after any block padding). */
  get offset(): number {
    return this.pos;
  }

  /** Appends one record's bytes as chunks. Returns the offset of its first chunk header. */
  write(payload: Uint8Array): number {
    let rest = payload;
    let first = true;
    let start = -1;
    for (;;) {
      const left = BLOCK_SIZE - (this.pos % BLOCK_SIZE);
      if (left < CHUNK_HEADER) {
        this.push(Buffer.alloc(left));
        continue;
      }
      if (start < 0) start = this.pos;
      const room = left - CHUNK_HEADER;
      const n = Math.min(room, rest.length);
      const last = n === rest.length;
      const type = first ? (last ? 1 : 2) : last ? 4 : 3;
      const body = rest.subarray(0, n);
      const head = Buffer.alloc(CHUNK_HEADER);
      head.writeUInt32LE(chunkCrc(type, body), 0);
      head.writeUInt16LE(n, 4);
      head[6] = type;
      this.push(head);
      this.push(Buffer.from(body));
      rest = rest.subarray(n);
      first = false;
      if (last) return start;
    }
  }

  /** Encodes and appends a Record given as a plain object (protobufjs's camelCase field names). */
  record(rec: Record<string, unknown>): number {
    return this.write(encodeRecord(rec));
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}
