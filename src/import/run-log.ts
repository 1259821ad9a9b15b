/**
 * What one run's `.wandb` file(s) say, folded record by record: the run's fields, config and summary after every
 * update, history rows (to a bounded-memory spool), system metrics, console output, saved files, the exit.
 * Several files of one run id (a resumed run: one folder per segment) fold into the same RunLog, oldest first.
 */
import type { JsonObject, JsonValue } from "../model/json.js";
import { type HistoryRecord, type SystemMetricsRecord, toHistoryRecord } from "../model/records.js";
import { HistorySpool } from "../sync/spool.js";
import { environmentJson, longValue, type PbItem, type PbRecord, timestampSeconds } from "./proto.js";
import { applyUpdates, historyRow, itemValue, LazyUpdates } from "./values.js";

const HISTORY_BATCH = 2000;

export interface RunFields {
  runId: string;
  entity: string;
  project: string;
  displayName: string;
  group: string;
  jobType: string;
  notes: string;
  tags: string[];
  sweepId: string;
  host: string;
  storageId: string;
  commit: string;
  remote: string;
  startTime: number | null;
  resumed: boolean;
}

export class RunLog {
  fields: RunFields | null = null;
  readonly config: JsonObject = {};
  private readonly summaryUpdates = new LazyUpdates();
  environment: Record<string, unknown> = {};
  readonly stats: SystemMetricsRecord[] = [];
  readonly outputRaw: string[] = [];
  readonly output: string[] = [];
  readonly files = new Set<string>();
  exit: { exitCode: number; runtime: number } | null = null;
  preempted = false;
  producer: string | null = null;
  /** Latest time any record carried (Unix seconds). */
  lastTime: number | null = null;
  records = 0;
  historyRows = 0;
  /** Highest `_step` read (-1 without history). */
  maxStep = -1;
  /** Rows with steps >= fromStep are kept; earlier ones are only counted (an incremental import). */
  fromStep = 0;
  private batch: HistoryRecord[] = [];
  readonly history: HistorySpool;

  constructor(memoryCells?: number) {
    this.history = new HistorySpool(memoryCells);
  }

  /** The summary after every update read. */
  summary(): JsonObject {
    return this.summaryUpdates.value();
  }

  get runId(): string {
    return this.fields?.runId ?? "";
  }

  /** Notes a time a record carried (lastTime). */
  seen(t: number | null): void {
    if (t !== null && Number.isFinite(t) && (this.lastTime === null || t > this.lastTime)) this.lastTime = t;
  }

  /** Folds a summary record in (what add does with one). */
  addSummary(summary: { update?: PbItem[]; remove?: PbItem[] } | undefined): void {
    this.summaryUpdates.add(summary);
  }

  /** Folds one decoded record in. */
  add(rec: PbRecord): void {
    this.records++;
    switch (rec.recordType) {
      case "history":
        this.addHistory(rec);
        return;
      case "summary":
        this.summaryUpdates.add(rec.summary);
        return;
      case "config":
        applyUpdates(this.config, rec.config);
        return;
      case "stats":
        this.addStats(rec);
        return;
      case "output_raw":
      case "outputRaw":
        this.seen(timestampSeconds(rec.outputRaw?.timestamp));
        this.outputRaw.push(rec.outputRaw?.line ?? "");
        return;
      case "output":
        this.seen(timestampSeconds(rec.output?.timestamp));
        this.output.push(rec.output?.line ?? "");
        return;
      case "files":
        for (const f of rec.files?.files ?? []) if (f.path) this.files.add(f.path);
        return;
      case "run":
        this.addRun(rec);
        return;
      case "exit":
        this.exit = { exitCode: rec.exit?.exitCode ?? 0, runtime: rec.exit?.runtime ?? 0 };
        return;
      case "preempting":
        this.preempted = true;
        return;
      case "header":
        this.producer = rec.header?.versionInfo?.producer || this.producer;
        return;
      case "environment":
        this.environment = { ...this.environment, ...environmentJson(rec.environment) };
        return;
      default:
        return;
    }
  }

  private addRun(rec: PbRecord): void {
    const r = rec.run!;
    const prev = this.fields;
    const pick = (v: string | undefined, old: string | undefined) => (v ? v : (old ?? ""));
    const start = timestampSeconds(r.startTime);
    this.fields = {
      runId: pick(r.runId, prev?.runId),
      entity: pick(r.entity, prev?.entity),
      project: pick(r.project, prev?.project),
      displayName: pick(r.displayName, prev?.displayName),
      group: pick(r.runGroup, prev?.group),
      jobType: pick(r.jobType, prev?.jobType),
      notes: pick(r.notes, prev?.notes),
      tags: r.tags && r.tags.length > 0 ? [...r.tags] : (prev?.tags ?? []),
      sweepId: pick(r.sweepId, prev?.sweepId),
      host: pick(r.host, prev?.host),
      storageId: pick(r.storageId, prev?.storageId),
      commit: pick(r.git?.commit, prev?.commit),
      remote: pick(r.git?.remoteUrl, prev?.remote),
      // the first segment's start is the run's creation
      startTime: prev?.startTime ?? (start !== null && start > 0 ? start : null),
      resumed: (prev?.resumed ?? false) || (r.resumed ?? false),
    };
    applyUpdates(this.config, r.config);
    this.summaryUpdates.add(r.summary);
    this.seen(start);
  }

  private addStats(rec: PbRecord): void {
    const s = rec.stats!;
    const t = timestampSeconds(s.timestamp);
    this.seen(t);
    const row: JsonObject = {};
    for (const item of s.item ?? []) row[`system.${item.key ?? ""}`] = itemValue(item);
    const start = this.fields?.startTime ?? null;
    this.stats.push({
      run_id: this.runId,
      timestamp: t,
      runtime: t !== null && start !== null ? t - start : null,
      metrics: row,
    });
  }

  private addHistory(rec: PbRecord): void {
    const h = rec.history!;
    const row = historyRow(h.item ?? []);
    if (row._step === undefined && h.step?.num !== undefined) row._step = longValue(h.step.num) as JsonValue;
    const r = toHistoryRecord(this.runId, row);
    if (r === null) return;
    this.historyRows++;
    if (r.step > this.maxStep) this.maxStep = r.step;
    if (r.timestamp !== null) this.seen(r.timestamp);
    if (r.step < this.fromStep) return;
    this.batch.push(r);
    if (this.batch.length >= HISTORY_BATCH) this.flushHistory();
  }

  /** Moves the rows read so far to the spool. */
  flushHistory(): void {
    if (this.batch.length === 0) return;
    this.history.add(this.batch);
    this.batch = [];
  }

  /** Console output: the raw stream when the client wrote one (newer clients), else the line records. */
  consoleText(): string {
    const raw = this.outputRaw.length > 0;
    const lines = raw ? this.outputRaw : this.output;
    return raw ? lines.join("") : lines.map((l) => (l.endsWith("\n") ? l : `${l}\n`)).join("");
  }
}
