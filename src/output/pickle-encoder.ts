/**
 * A small streaming Python pickle encoder (protocol 4 opcodes, no FRAME), enough for what dr_wandb's pickles
 * hold: dict, list, str, int (any size), float (NaN/±Inf too), None, bool and timezone-aware UTC datetimes.
 *
 * Memo use is deliberate and small: dict keys and run ids repeat on every row, so each short string is stored
 * once (MEMOIZE) and fetched afterwards (BINGET/LONG_BINGET). Python then shares one str object per key, which
 * keeps both the file and the unpickled data smaller, as Python's own pickler would. The `datetime.datetime`
 * class and the `datetime.timezone.utc` object are memoised the same way on first use.
 *
 * Value mapping (JsonValue → Python): a number that is a safe integer (|n| < 2^53) → int, so 2.0 becomes 2;
 * any other number → float; bigint → int; string → str (lone surrogates kept, as Python's "surrogatepass").
 *
 * Over 400 lines on purpose: one encoder class whose methods are the pickle opcodes it writes, each beside its bytes;
 * most of the rest is the value mapping explained above.
 */
import type { JsonValue } from "../model/json.js";
import type { UtcInstant } from "./rows.js";

// Opcodes (Lib/pickle.py names).
const MARK = 0x28; // (
const STOP = 0x2e; // .
const BININT = 0x4a; // J  4-byte signed little-endian
const BININT1 = 0x4b; // K  1-byte unsigned
const BININT2 = 0x4d; // M  2-byte unsigned little-endian
const NONE = 0x4e; // N
const REDUCE = 0x52; // R
const BINUNICODE = 0x58; // X  4-byte length + UTF-8
const APPEND = 0x61; // a
const APPENDS = 0x65; // e
const BINGET = 0x68; // h
const LONG_BINGET = 0x6a; // j
const EMPTY_LIST = 0x5d; // ]
const SETITEMS = 0x75; // u
const EMPTY_DICT = 0x7d; // }
const BINFLOAT = 0x47; // G  8-byte big-endian double
const SHORT_BINBYTES = 0x43; // C
const PROTO = 0x80;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a; // 1-byte length + two's complement little-endian
const LONG4 = 0x8b; // 4-byte length + two's complement little-endian
const SHORT_BINUNICODE = 0x8c; // 1-byte length + UTF-8
const BINUNICODE8 = 0x8d;
const STACK_GLOBAL = 0x93;
const MEMOIZE = 0x94;

/** Items per MARK … APPENDS / SETITEMS group, as Python's pickler batches them. */
export const BATCH = 1000;

/** Strings up to this length are memoised (dict keys, run ids); at most MEMO_LIMIT of them. */
const MEMO_MAX_CHARS = 256;
const MEMO_LIMIT = 1 << 16;

/** A timezone-aware UTC `datetime.datetime`. */
export class PyDateTime {
  constructor(readonly instant: UtcInstant) {}
}

export type PickleValue = JsonValue | PyDateTime | PickleValue[] | { [key: string]: PickleValue };

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

interface StringWithWellFormed {
  isWellFormed?: () => boolean;
}

/** UTF-8 with lone surrogates encoded as their own 3-byte sequences (Python's "surrogatepass"). */
function utf8SurrogatePass(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Buffer.from(out);
}

/** Two's complement little-endian bytes of n, as few as hold it (Python's encode_long). */
export function encodeLong(n: bigint): Buffer {
  if (n === 0n) return Buffer.alloc(0);
  let len = 1;
  while (n < -(1n << BigInt(8 * len - 1)) || n >= 1n << BigInt(8 * len - 1)) len++;
  let v = n < 0n ? n + (1n << BigInt(8 * len)) : n;
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Appends opcodes to a growing buffer; take() hands the bytes so far to the file. */
export class PickleEncoder {
  private buf = Buffer.allocUnsafe(1 << 16);
  private pos = 0;
  private memoSize = 0;
  private readonly memo = new Map<string, number>();
  private datetimeClass = -1;
  private utc = -1;

  get length(): number {
    return this.pos;
  }

  /** The bytes encoded since the last take() (a copy; the encoder reuses its buffer). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private op(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private u32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4;
  }

  private bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  proto(): this {
    this.ensure(2);
    this.buf[this.pos++] = PROTO;
    this.buf[this.pos++] = 4;
    return this;
  }

  stop(): this {
    this.op(STOP);
    return this;
  }

  mark(): this {
    this.op(MARK);
    return this;
  }

  emptyList(): this {
    this.op(EMPTY_LIST);
    return this;
  }

  emptyDict(): this {
    this.op(EMPTY_DICT);
    return this;
  }

  /** list.append(top) */
  append(): this {
    this.op(APPEND);
    return this;
  }

  /** list.extend(everything since the last MARK) */
  appends(): this {
    this.op(APPENDS);
    return this;
  }

  /** dict.update(pairs since the last MARK) */
  setitems(): this {
    this.op(SETITEMS);
    return this;
  }

  none(): this {
    this.op(NONE);
    return this;
  }

  bool(b: boolean): this {
    this.op(b ? NEWTRUE : NEWFALSE);
    return this;
  }

  float(n: number): this {
    this.ensure(9);
    this.buf[this.pos++] = BINFLOAT;
    this.buf.writeDoubleBE(n, this.pos);
    this.pos += 8;
    return this;
  }

  /** A JS number: safe integers become Python int, everything else float. */
  number(n: number): this {
    if (!Number.isSafeInteger(n) || Object.is(n, -0)) return this.float(n);
    if (n >= 0 && n < 256) {
      this.ensure(2);
      this.buf[this.pos++] = BININT1;
      this.buf[this.pos++] = n;
    } else if (n >= 0 && n < 65536) {
      this.ensure(3);
      this.buf[this.pos++] = BININT2;
      this.buf.writeUInt16LE(n, this.pos);
      this.pos += 2;
    } else if (n >= I32_MIN && n <= I32_MAX) {
      this.ensure(5);
      this.buf[this.pos++] = BININT;
      this.buf.writeInt32LE(n, this.pos);
      this.pos += 4;
    } else {
      this.long(BigInt(n));
    }
    return this;
  }

  /** A Python int of any size. */
  bigint(n: bigint): this {
    if (n >= BigInt(I32_MIN) && n <= BigInt(I32_MAX)) return this.number(Number(n));
    return this.long(n);
  }

  private long(n: bigint): this {
    const b = encodeLong(n);
    if (b.length < 256) {
      this.ensure(2);
      this.buf[this.pos++] = LONG1;
      this.buf[this.pos++] = b.length;
    } else {
      this.op(LONG4);
      this.u32(b.length);
    }
    this.bytes(b);
    return this;
  }

  str(s: string): this {
    if ((s as StringWithWellFormed).isWellFormed?.() === false) return this.utf8Bytes(utf8SurrogatePass(s));
    // Fast path: encode straight into the buffer, then write the length in front.
    const max = s.length * 3;
    if (max < 256) {
      this.ensure(2 + max);
      const start = this.pos;
      const n = this.buf.write(s, start + 2, "utf8");
      this.buf[start] = SHORT_BINUNICODE;
      this.buf[start + 1] = n;
      this.pos = start + 2 + n;
      return this;
    }
    if (max <= 0xffffffff) {
      this.ensure(5 + max);
      const start = this.pos;
      const n = this.buf.write(s, start + 5, "utf8");
      this.buf[start] = BINUNICODE;
      this.buf.writeUInt32LE(n, start + 1);
      this.pos = start + 5 + n;
      return this;
    }
    return this.utf8Bytes(Buffer.from(s, "utf8"));
  }

  private utf8Bytes(b: Buffer): this {
    if (b.length < 256) {
      this.ensure(2);
      this.buf[this.pos++] = SHORT_BINUNICODE;
      this.buf[this.pos++] = b.length;
    } else if (b.length <= 0xffffffff) {
      this.op(BINUNICODE);
      this.u32(b.length);
    } else {
      this.op(BINUNICODE8);
      this.ensure(8);
      this.buf.writeBigUInt64LE(BigInt(b.length), this.pos);
      this.pos += 8;
    }
    this.bytes(b);
    return this;
  }

  private get(index: number): void {
    if (index < 256) {
      this.ensure(2);
      this.buf[this.pos++] = BINGET;
      this.buf[this.pos++] = index;
    } else {
      this.op(LONG_BINGET);
      this.u32(index);
    }
  }

  /** Stores the object on top of the stack in the memo; returns its index. */
  private memoize(): number {
    this.op(MEMOIZE);
    return this.memoSize++;
  }

  /** A string that is likely to repeat (dict keys, run ids): written once, then fetched from the memo. */
  memoStr(s: string): this {
    const i = this.memo.get(s);
    if (i !== undefined) {
      this.get(i);
      return this;
    }
    this.str(s);
    if (s.length <= MEMO_MAX_CHARS && this.memo.size < MEMO_LIMIT) this.memo.set(s, this.memoize());
    return this;
  }

  private global(module: string, name: string): void {
    this.memoStr(module);
    this.memoStr(name);
    this.op(STACK_GLOBAL);
  }

  /** `datetime.datetime(y, m, d, H, M, S, us, tzinfo=datetime.timezone.utc)`, via the class's pickle state. */
  datetime(t: UtcInstant): this {
    if (this.datetimeClass < 0) {
      this.global("datetime", "datetime");
      this.datetimeClass = this.memoize();
    } else this.get(this.datetimeClass);
    const d = new Date(t.seconds * 1000);
    const y = d.getUTCFullYear();
    const us = t.micros;
    this.ensure(12);
    this.buf[this.pos++] = SHORT_BINBYTES;
    this.buf[this.pos++] = 10;
    this.buf[this.pos++] = y >> 8;
    this.buf[this.pos++] = y & 0xff;
    this.buf[this.pos++] = d.getUTCMonth() + 1;
    this.buf[this.pos++] = d.getUTCDate();
    this.buf[this.pos++] = d.getUTCHours();
    this.buf[this.pos++] = d.getUTCMinutes();
    this.buf[this.pos++] = d.getUTCSeconds();
    this.buf[this.pos++] = (us >> 16) & 0xff;
    this.buf[this.pos++] = (us >> 8) & 0xff;
    this.buf[this.pos++] = us & 0xff;
    if (this.utc < 0) {
      // timezone(timedelta(0)) — CPython returns the timezone.utc singleton for a zero offset.
      this.global("datetime", "timezone");
      this.global("datetime", "timedelta");
      this.number(0);
      this.op(TUPLE1);
      this.op(REDUCE);
      this.op(TUPLE1);
      this.op(REDUCE);
      this.utc = this.memoize();
    } else this.get(this.utc);
    this.op(TUPLE2);
    this.op(REDUCE);
    return this;
  }

  /** Any value, recursively. Lists and dicts are written in MARK … APPENDS / SETITEMS groups of {@link BATCH}. */
  value(v: PickleValue): this {
    switch (typeof v) {
      case "number":
        return this.number(v);
      case "bigint":
        return this.bigint(v);
      case "string":
        return this.str(v);
      case "boolean":
        return this.bool(v);
      case "object":
        if (v === null) return this.none();
        if (v instanceof PyDateTime) return this.datetime(v.instant);
        if (Array.isArray(v)) return this.list(v);
        return this.dict(v);
      default:
        return this.none();
    }
  }

  list(items: readonly PickleValue[]): this {
    this.op(EMPTY_LIST);
    for (let i = 0; i < items.length; i += BATCH) {
      const end = Math.min(items.length, i + BATCH);
      this.op(MARK);
      for (let j = i; j < end; j++) this.value(items[j]!);
      this.op(APPENDS);
    }
    return this;
  }

  dict(obj: { readonly [key: string]: PickleValue }): this {
    this.op(EMPTY_DICT);
    let n = 0;
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v === undefined) continue;
      if (n === 0) this.op(MARK);
      this.memoStr(k);
      this.value(v);
      if (++n === BATCH) {
        this.op(SETITEMS);
        n = 0;
      }
    }
    if (n > 0) this.op(SETITEMS);
    return this;
  }
}
