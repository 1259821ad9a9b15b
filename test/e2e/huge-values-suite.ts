/**
 * A run config or summary holding one huge value (issue #13: "a 200 MB config must still work"): `dr-wandb sync`
 * (archive and Parquet export) and `wandb-download` keep it exact, with DuckDB's memory planned from the size of the
 * largest value instead of failing on the fixed budgets (128 MiB write, 160 MiB export). Values are compared by
 * SHA-256 digest, computed where the value lies (DuckDB's sha256, Python's hashlib for the pickle), so the test never
 * holds a second copy of the text. Shared by huge-values.test.ts (tens of MB) and huge-values.heavy.test.ts (200 MB).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FakeWandb, startFakeWandb } from "../../fake-wandb/index.js";
import { openArchive } from "../../src/archive/open.js";
import { duckObjects, mutate, runCli, tempDir, truthRuns } from "../helpers.js";
import { startTestPg, type TestPgServer } from "../support/pg-test-server.js";

export interface HugeCase {
  /** UTF-16 units of each huge value ("é", 2 bytes each in UTF-8). */
  chars: number;
  /** Where the huge values go: one run each. */
  places: ("config" | "summary")[];
  formats: ("parquet" | "jsonl" | "pkl")[];
  /** Run the CLI in a process of its own (the huge value then costs the test process nothing). */
  process: boolean;
  /** Sync into a PostgreSQL archive (DR_WANDB_TEST_PG_URL, or a throwaway server) instead of DuckDB. */
  postgres?: boolean;
}

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

export function hugeValueSuite(c: HugeCase): void {
  let fake: FakeWandb;
  let env: NodeJS.ProcessEnv;
  let pgServer: TestPgServer | undefined;
  /** run name -> where its huge value is */
  const huge = new Map<string, "config" | "summary">();
  let digest = "";
  const bytes = 2 * c.chars;

  before(async () => {
    if (c.postgres) pgServer = await startTestPg();
    fake = await startFakeWandb({ seed: 13, runs: c.places.length + 1, steps: 40, metrics: 3 });
    env = { WANDB_BASE_URL: fake.url, WANDB_API_KEY: fake.apiKey };
    const names = (await truthRuns(fake.url)).map((t) => t.name as string);
    let value: string | undefined = "é".repeat(c.chars);
    digest = createHash("sha256").update(value).digest("hex");
    for (const [i, place] of c.places.entries()) {
      huge.set(names[i]!, place);
      await mutate(
        fake.url,
        place === "config"
          ? { op: "setConfig", run: names[i]!, config: { big: value } }
          : { op: "setSummary", run: names[i]!, summary: { big: value } },
      );
    }
    value = undefined;
  });
  after(async () => {
    await fake?.close();
    await pgServer?.stop();
  });

  /** run_id -> digest of its huge value, from rows of (run_id, d). */
  const digests = (rows: Record<string, unknown>[]) =>
    Object.fromEntries(rows.filter((r) => huge.has(String(r.run_id))).map((r) => [String(r.run_id), String(r.d)]));
  const expected = () => Object.fromEntries([...huge.keys()].map((k) => [k, digest]));
  const pick = (col: (p: "config" | "summary") => string) =>
    `CASE run_id ${[...huge].map(([k, p]) => `WHEN ${lit(k)} THEN ${col(p)}`).join(" ")} END`;

  describe(`a run with one value of ${Math.round(bytes / 1e6)} MB in its ${c.places.join(" and ")}`, () => {
    it("syncs to the archive and exports it exactly", async () => {
      await using dir = await tempDir();
      const dbUrl = pgServer?.urlFor(`dr_wandb_huge_${process.pid}`);
      const target = dbUrl === undefined ? [] : ["--db-url", dbUrl];
      const r = await runCli(["sync", `${fake.entity}/${fake.project}`, "--output-dir", dir.path, ...target, "-q"], {
        env,
        process: c.process,
        timeoutMs: 600_000,
      });
      assert.equal(r.code, 0, r.stderr);
      const archive = await openArchive({ outputDir: dir.path, dbUrl, readOnly: true });
      try {
        const q = await archive.query(
          dbUrl === undefined
            ? `SELECT run_id, sha256(${pick((p) => `json_extract_string(${p}, '$.big')`)}) AS d FROM runs`
            : `SELECT run_id, encode(sha256(convert_to(${pick((p) => `${p}->>'big'`)}, 'UTF8')), 'hex') AS d FROM runs`,
        );
        assert.deepEqual(digests(q.rows.map(([run_id, d]) => ({ run_id, d }))), expected(), "archive");
      } finally {
        await archive.close();
      }
      const file = join(dir.path, "runs_metadata.parquet");
      const rows = await duckObjects(
        `SELECT run_id, sha256(${pick((p) => `json_extract_string(${p}, '$.big')`)}) AS d FROM read_parquet(${lit(file)})`,
      );
      assert.deepEqual(digests(rows), expected(), "runs_metadata.parquet");
    });

    for (const format of c.formats) {
      it(`wandb-download --format ${format} keeps it exactly`, async () => {
        await using dir = await tempDir();
        const r = await runCli([fake.entity, fake.project, dir.path, "--format", format], {
          env,
          bin: "wandb-download",
          process: c.process,
          timeoutMs: 600_000,
        });
        assert.equal(r.code, 0, r.stderr);
        const file = join(dir.path, `${fake.entity}_${fake.project}_runs.${format}`);
        let got: Record<string, string>;
        if (format === "parquet") {
          got = digests(
            await duckObjects(
              `SELECT run_id, sha256(${pick((p) => `json_extract_string(${p}, '$.big')`)}) AS d FROM read_parquet(${lit(file)})`,
            ),
          );
        } else if (format === "jsonl") {
          got = digests(
            await duckObjects(
              `SELECT run_id, sha256(${pick((p) => `json_extract_string(j, '$.${p}.big')`)}) AS d FROM (
                 SELECT json_extract_string(json, '$.run_id') AS run_id, json AS j FROM read_json_objects(${lit(file)},
                 format = 'newline_delimited', maximum_object_size = ${4 * bytes + (1 << 20)}))`,
            ),
          );
        } else {
          const py = `import hashlib, json, pickle, sys
places = json.loads(sys.argv[2])
with open(sys.argv[1], "rb") as f:
    runs = pickle.load(f)
out = {r["run_id"]: hashlib.sha256(r[places[r["run_id"]]]["big"].encode("utf-8")).hexdigest() for r in runs if r["run_id"] in places}
print(json.dumps(out))`;
          const p = spawnSync("python3", ["-c", py, file, JSON.stringify(Object.fromEntries(huge))], {
            encoding: "utf8",
          });
          assert.equal(p.status, 0, p.stderr);
          got = JSON.parse(p.stdout) as Record<string, string>;
        }
        assert.deepEqual(got, expected(), `${format}: the huge values' digests`);
      });
    }
  });
}
