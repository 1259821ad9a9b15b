/** The options, events and result of `dr-wandb import` (importPaths in import.ts). */

export interface ImportOptions {
  /** Overrides the entity of every run (else the RunRecord's, else `defaultEntity`). */
  entity?: string;
  /** Overrides the project of every run (else the RunRecord's, else "uncategorized" as W&B does). */
  project?: string;
  /** Used for runs whose log names no entity (offline runs usually do not), when `entity` is not given. */
  defaultEntity?: string;
  /** Where run files go (`<outputDir>/files/...`); no files are copied without it. */
  outputDir?: string;
  /** Re-import runs whose files have not changed. */
  force?: boolean;
  /**
   * false: every history row as an object (the path PostgreSQL takes) even where the archive takes text rows
   * (comparisons). Default: on unless DR_WANDB_IMPORT_FAST=0.
   */
  textRows?: boolean;
  /** History rows kept in memory per run before spooling to disk (tests). */
  memoryCells?: number;
  onEvent?: (e: ImportEvent) => void;
}

export type ImportEvent =
  | { type: "found"; files: number; runs: number }
  | { type: "run"; run: string; entity: string; project: string; action: RunAction; historyRows: number }
  | { type: "warning"; message: string };

export type RunAction = "new" | "updated" | "appended" | "unchanged" | "kept-wandb";

export interface ImportResult {
  files: number;
  runs: number;
  runsWritten: number;
  runsUnchanged: number;
  /** Runs the archive has from W&B: left as they are. */
  runsKeptFromWandb: number;
  historyRows: number;
  warnings: string[];
  /** The projects the runs went to. */
  projects: { entity: string; project: string }[];
}
