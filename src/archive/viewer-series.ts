/**
 * The viewer's metric series (SeriesQuery, viewer.ts): every point of a run in range, or per bucket and value class
 * its first, last, min and max point (M4), NaN and ±Infinity kept; one statement for all runs of a panel.
 */
import type { RunSeries, SeriesQuery } from "./viewer.js";
import { int, Params, type RowsFn, type ViewerDialect } from "./viewer-dialect.js";

export async function readSeries(d: ViewerDialect, rows: RowsFn, q: SeriesQuery): Promise<RunSeries[]> {
  if (q.runIds.length === 0) return [];
  const p = new Params();
  const buckets = int(q.buckets, 1000, 20_000) || 1;
  const rawLimit = int(q.rawLimit, buckets * 4, 5_000_000);
  const ids = d.textList(q.runIds, p);
  const j = d.jsonAt("h.rest", [q.key], p);
  const typed = d.typedValue("h.vals", "k.keys", p.add(q.key));
  const x = q.x === "runtime" ? "runtime" : q.x === "wall" ? d.epoch('"timestamp"') : "CAST(step AS DOUBLE PRECISION)";
  const range: string[] = [];
  if (q.x0 !== undefined && Number.isFinite(q.x0)) range.push(`x >= ${p.add(q.x0)}`);
  if (q.x1 !== undefined && Number.isFinite(q.x1)) range.push(`x <= ${p.add(q.x1)}`);
  const nan = d.isNan("v");
  // Points of the selected runs in range, materialised once (DuckDB would otherwise re-extract the JSON value
  // for every reference). Each bucket is [lo, hi] of every run's x split in `buckets`, per value class (finite,
  // NaN, +Inf, -Inf): it keeps its first and last point by x and, for finite values, its min and max (M4).
  const with_ = `
    WITH pts AS MATERIALIZED (
      SELECT run_id, step, x, v FROM (
        SELECT run_id, step, ${x} AS x, coalesce(tv, ${d.jsonNumber("j")}) AS v FROM (
          SELECT h.run_id, h.step, h.runtime, h."timestamp", ${typed} AS tv, ${j} AS j FROM history_rows h
          LEFT JOIN history_keysets k ON k.entity = h.entity AND k.project = h.project AND k.keyset = h.keyset
          WHERE h.entity = ${p.add(q.entity)} AND h.project = ${p.add(q.project)}
            AND ${d.inList("h.run_id", ids)}
        ) h
      ) t WHERE x IS NOT NULL AND v IS NOT NULL ${range.map((c) => `AND ${c}`).join(" ")}
    ),
    g AS (SELECT min(x) AS lo, max(x) AS hi FROM pts),
    cnt AS (SELECT run_id, count(*) AS n FROM pts GROUP BY run_id),
    k AS (
      SELECT pts.run_id, step, x, v, cnt.n,
        CASE WHEN g.hi > g.lo THEN floor((x - g.lo) / (g.hi - g.lo) * ${buckets}) ELSE 0 END AS bk,
        CASE WHEN ${nan} THEN 1 WHEN v = ${d.inf("")} THEN 2 WHEN v = ${d.inf("-")} THEN 3 ELSE 0 END AS c
      FROM pts JOIN cnt ON cnt.run_id = pts.run_id CROSS JOIN g
    )`;
  // PostgreSQL has no arg_min: window ranks give the same four points per bucket and class.
  const sql = d.pg
    ? `${with_},
    r AS (
      SELECT run_id, step, x, v, n,
        row_number() OVER (PARTITION BY run_id, bk, c ORDER BY x, step) AS r_first,
        row_number() OVER (PARTITION BY run_id, bk, c ORDER BY x DESC, step DESC) AS r_last,
        row_number() OVER (PARTITION BY run_id, bk, c ORDER BY CASE WHEN c = 0 THEN v END ASC NULLS LAST, x, step) AS r_min,
        row_number() OVER (PARTITION BY run_id, bk, c ORDER BY CASE WHEN c = 0 THEN v END DESC NULLS LAST, x DESC, step DESC) AS r_max
      FROM k
    )
    SELECT run_id, step, x, v, n, CASE WHEN n <= ${rawLimit} THEN 1 ELSE 0 END AS raw FROM r
    WHERE n <= ${rawLimit} OR r_first = 1 OR r_last = 1 OR r_min = 1 OR r_max = 1
    ORDER BY run_id, x, step`
    : `${with_},
    pick AS (
      SELECT run_id, step FROM k WHERE n <= ${rawLimit}
      UNION
      SELECT run_id, unnest([arg_min(step, (x, step)), arg_max(step, (x, step)), arg_min(step, (v, x, step)),
                             arg_max(step, (v, x, step))]) AS step
      FROM k WHERE n > ${rawLimit} GROUP BY run_id, bk, c
    )
    SELECT pts.run_id, pts.step, x, v, cnt.n, CASE WHEN cnt.n <= ${rawLimit} THEN 1 ELSE 0 END AS raw
    FROM pts JOIN pick ON pick.run_id = pts.run_id AND pick.step = pts.step JOIN cnt ON cnt.run_id = pts.run_id
    ORDER BY pts.run_id, x, pts.step`;
  const r = await rows(sql, p.values);
  const out = new Map<string, RunSeries>();
  for (const id of q.runIds) {
    if (!out.has(id)) out.set(id, { run_id: id, total: 0, sampled: false, step: [], x: [], y: [] });
  }
  for (const row of r) {
    const s = out.get(String(row.run_id));
    if (!s) continue;
    s.total = Number(row.n);
    s.sampled = Number(row.raw) !== 1;
    s.step.push(Number(row.step));
    s.x.push(Number(row.x));
    s.y.push(Number(row.v));
  }
  return [...out.values()];
}
