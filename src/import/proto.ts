/**
 * Our protobuf definitions of the records dr-wandb reads from a `.wandb` log: a subset of `wandb_internal.Record`
 * (wandb/proto/wandb_internal.proto in the public wandb/wandb repository; field numbers as there, checked against the
 * descriptors shipped in wandb 0.31.0). Fields we do not read are left out and skipped by the decoder (telemetry,
 * artifacts, metrics definitions, requests...). Decoding is protobufjs's, from this text parsed once at load.
 */
import protobuf from "protobufjs";

export const WANDB_RECORD_PROTO = `
syntax = "proto3";
package wandb_internal;

message Timestamp { int64 seconds = 1; int32 nanos = 2; }

message Record {
  int64 num = 1;
  oneof record_type {
    HistoryRecord history = 2;
    SummaryRecord summary = 3;
    OutputRecord output = 4;
    ConfigRecord config = 5;
    FilesRecord files = 6;
    StatsRecord stats = 7;
    OutputRawRecord output_raw = 13;
    RunRecord run = 17;
    RunExitRecord exit = 18;
    HeaderRecord header = 21;
    RunPreemptingRecord preempting = 23;
    EnvironmentRecord environment = 26;
  }
  string uuid = 19;
}

// Read first by the text-row path (src/import/text-rows.ts): only the two record types every step writes, without
// num (whose 64-bit Long costs more than the rest); any other record is decoded whole as a Record.
message RecordPeek {
  oneof record_type {
    HistoryPeek history = 2;
    SummaryRecord summary = 3;
  }
}
message HistoryPeek { repeated HistoryItem item = 1; }

message HeaderRecord { VersionInfo version_info = 1; }
message VersionInfo { string producer = 1; string min_consumer = 2; }

message RunRecord {
  string run_id = 1;
  string entity = 2;
  string project = 3;
  ConfigRecord config = 4;
  SummaryRecord summary = 5;
  string run_group = 6;
  string job_type = 7;
  string display_name = 8;
  string notes = 9;
  repeated string tags = 10;
  string sweep_id = 12;
  string host = 13;
  int64 starting_step = 14;
  string storage_id = 16;
  Timestamp start_time = 17;
  bool resumed = 18;
  int32 runtime = 20;
  GitRepoRecord git = 21;
  bool forked = 22;
  bool resume = 24;
}

message GitRepoRecord { string remote_url = 1; string commit = 2; }

message RunExitRecord { int32 exit_code = 1; int32 runtime = 2; bool not_complete = 3; }
message RunPreemptingRecord {}

message HistoryStep { int64 num = 1; }
message HistoryRecord { repeated HistoryItem item = 1; HistoryStep step = 2; }
message HistoryItem {
  string key = 1;
  repeated string nested_key = 2;
  oneof value {
    int32 none = 3;
    bool boolean = 4;
    sint64 integer = 5;
    double number = 6;
    string text = 7;
    string json = 8;
  }
  string value_json = 16;
}

message ConfigRecord { repeated ConfigItem update = 1; repeated ConfigItem remove = 2; }
message ConfigItem { string key = 1; repeated string nested_key = 2; string value_json = 16; }

message SummaryRecord { repeated SummaryItem update = 1; repeated SummaryItem remove = 2; }
message SummaryItem { string key = 1; repeated string nested_key = 2; string value_json = 16; }

message StatsRecord { int32 stats_type = 1; Timestamp timestamp = 2; repeated StatsItem item = 3; }
message StatsItem { string key = 1; string value_json = 16; }

message OutputRecord { int32 output_type = 1; Timestamp timestamp = 2; string line = 3; }
message OutputRawRecord { int32 output_type = 1; Timestamp timestamp = 2; string line = 3; }

message FilesRecord { repeated FilesItem files = 1; }
message FilesItem { string path = 1; int32 policy = 2; int32 type = 3; }

message EnvironmentRecord {
  string os = 1;
  string python = 2;
  Timestamp started_at = 3;
  string docker = 4;
  repeated string args = 5;
  string program = 6;
  string code_path = 7;
  string code_path_local = 8;
  GitRepoRecord git = 9;
  string email = 10;
  string root = 11;
  string host = 12;
  string username = 13;
  string executable = 14;
  string colab = 15;
  uint32 cpu_count = 16;
  uint32 cpu_count_logical = 17;
  string gpu_type = 18;
  uint32 gpu_count = 19;
  map<string, DiskInfo> disk = 20;
  MemoryInfo memory = 21;
  CpuInfo cpu = 22;
  AppleInfo apple = 23;
  repeated GpuNvidiaInfo gpu_nvidia = 24;
  string cuda_version = 25;
  repeated GpuAmdInfo gpu_amd = 26;
  map<string, string> slurm = 27;
  TrainiumInfo trainium = 28;
  TPUInfo tpu = 29;
  CoreWeaveInfo coreweave = 30;
}
message DiskInfo { uint64 total = 1; uint64 used = 2; }
message MemoryInfo { uint64 total = 1; }
message CpuInfo { uint32 count = 1; uint32 count_logical = 2; string model = 3; }
message AppleInfo {
  string name = 1; uint32 ecpu_cores = 2; uint32 pcpu_cores = 3; uint32 gpu_cores = 4; uint32 memory_gb = 5;
  uint64 swap_total_bytes = 6; uint64 ram_total_bytes = 7; string mac_model = 8;
}
message GpuNvidiaInfo {
  string name = 1; uint64 memory_total = 2; uint32 cuda_cores = 3; string architecture = 4; string uuid = 5;
  string pci_bus_id = 6; uint32 numa_node = 7;
}
message GpuAmdInfo {
  string id = 1; string unique_id = 2; string vbios_version = 3; string performance_level = 4;
  string gpu_overdrive = 5; string gpu_memory_overdrive = 6; string max_power = 7; string series = 8;
  string model = 9; string vendor = 10; string sku = 11; string sclk_range = 12; string mclk_range = 13;
}
message TrainiumInfo { string name = 1; string vendor = 2; uint32 neuron_device_count = 3; uint32 neuroncore_per_device_count = 4; }
message TPUInfo { string name = 1; uint32 hbm_gib = 2; uint32 devices_per_chip = 3; uint32 count = 4; }
message CoreWeaveInfo { string cluster_name = 1; string org_id = 2; string region = 3; }
`;

/** protobufjs's 64-bit integer (from the `long` package). */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toString(): string;
}

export interface PbTimestamp {
  seconds?: LongLike | number;
  nanos?: number;
}

export interface PbItem {
  key?: string;
  nestedKey?: string[];
  valueJson?: string;
}

export interface PbHistoryItem extends PbItem {
  value?: "none" | "boolean" | "integer" | "number" | "text" | "json";
  none?: number;
  boolean?: boolean;
  integer?: LongLike | number;
  number?: number;
  text?: string;
  json?: string;
}

export interface PbUpdates {
  update?: PbItem[];
  remove?: PbItem[];
}

export interface PbRunRecord {
  runId?: string;
  entity?: string;
  project?: string;
  config?: PbUpdates;
  summary?: PbUpdates;
  runGroup?: string;
  jobType?: string;
  displayName?: string;
  notes?: string;
  tags?: string[];
  sweepId?: string;
  host?: string;
  startingStep?: LongLike | number;
  storageId?: string;
  startTime?: PbTimestamp;
  resumed?: boolean;
  runtime?: number;
  git?: { remoteUrl?: string; commit?: string };
  forked?: boolean;
  resume?: boolean;
}

/** One decoded Record; exactly one of the record fields is set (`recordType` names it), or none (a record we skip). */
export interface PbRecord {
  num?: LongLike | number;
  recordType?: string;
  history?: { item?: PbHistoryItem[]; step?: { num?: LongLike | number } };
  summary?: PbUpdates;
  config?: PbUpdates;
  output?: { outputType?: number; timestamp?: PbTimestamp; line?: string };
  outputRaw?: { outputType?: number; timestamp?: PbTimestamp; line?: string };
  files?: { files?: { path?: string; policy?: number; type?: number }[] };
  stats?: { statsType?: number; timestamp?: PbTimestamp; item?: PbItem[] };
  run?: PbRunRecord;
  exit?: { exitCode?: number; runtime?: number; notComplete?: boolean };
  header?: { versionInfo?: { producer?: string; minConsumer?: string } };
  preempting?: Record<string, never>;
  environment?: Record<string, unknown>;
}

const root = protobuf.parse(WANDB_RECORD_PROTO, { keepCase: false }).root;
const RecordType = root.lookupType("wandb_internal.Record");
const EnvironmentType = root.lookupType("wandb_internal.EnvironmentRecord");

/** Encodes a Record from a plain object of the same shape (the test and bench writer, src/import/log-writer.ts). */
export function encodeRecord(rec: Record<string, unknown>): Uint8Array {
  const err = RecordType.verify(rec);
  if (err) throw new Error(`not a Record: ${err}`);
  return RecordType.encode(RecordType.fromObject(rec)).finish();
}

/** A Record read for its history items or summary only; neither set for any other record type. */
export interface PbRecordPeek {
  recordType?: string;
  history?: { item?: PbHistoryItem[] };
  summary?: PbUpdates;
}

const PeekType = root.lookupType("wandb_internal.RecordPeek");

/** Decodes the history items or the summary of a Record payload (other fields skipped); throws on malformed bytes. */
export function decodePeek(payload: Uint8Array): PbRecordPeek {
  return PeekType.decode(payload) as unknown as PbRecordPeek;
}

/** Decodes one Record payload (throws protobufjs's error on malformed bytes). */
export function decodeRecord(payload: Uint8Array): PbRecord {
  return RecordType.decode(payload) as unknown as PbRecord;
}

/**
 * A decoded EnvironmentRecord as a plain object: camelCase field names (proto3 JSON), unset fields left out, 64-bit
 * sizes as numbers, startedAt as ISO-8601 text.
 */
export function environmentJson(env: unknown): Record<string, unknown> {
  const out = EnvironmentType.toObject(env as protobuf.Message, { longs: Number, enums: String }) as Record<
    string,
    unknown
  >;
  if (out.startedAt && typeof out.startedAt === "object") {
    const sec = timestampSeconds(out.startedAt as PbTimestamp);
    out.startedAt = sec === null ? null : isoSeconds(sec);
  }
  return out;
}

/** Unix seconds as ISO-8601 UTC with microseconds when present (as W&B writes startedAt). */
export function isoSeconds(sec: number): string {
  const ms = Math.floor(sec * 1000);
  const iso = new Date(ms).toISOString();
  const micros = Math.round((sec * 1000 - ms) * 1000);
  return micros > 0 ? `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z` : iso;
}

/** A protobufjs int64 as a number when exact, else a bigint. */
export function longValue(v: LongLike | number | undefined | null): number | bigint {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  const high = v.unsigned ? v.high >>> 0 : v.high;
  const n = high * 0x100000000 + (v.low >>> 0);
  return Number.isSafeInteger(n) ? n : BigInt(v.toString());
}

/** A Timestamp as Unix seconds (float), or null when absent. */
export function timestampSeconds(t: PbTimestamp | undefined | null): number | null {
  if (!t) return null;
  const s = Number(longValue(t.seconds));
  return s + (t.nanos ?? 0) / 1e9;
}
