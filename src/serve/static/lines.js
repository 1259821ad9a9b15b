// What a chart draws, computed from the API's points: per-run lines, or per-group mean with a min-max band, then
// exponential-moving-average smoothing; and the alignment uPlot needs (one x array for every series).

/** W&B/TensorBoard EMA with debiasing: s_n = (w s_{n-1} + (1-w) v_n), shown as s_n / (1 - w^n). NaN/±Inf pass. */
export function ema(ys, w) {
  if (!(w > 0)) return ys.slice();
  let last = 0;
  let n = 0;
  return ys.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * w + (1 - w) * v;
    n++;
    return last / (1 - w ** n);
  });
}

/** The value of line m at x: the point itself, else linear interpolation between its neighbours (finite only). */
function valueAt(m, x) {
  const xs = m.x;
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0 || x < xs[0] || x > xs[hi]) return undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] === x) {
      const v = m.y[mid];
      return Number.isFinite(v) ? v : undefined;
    }
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid - 1;
  }
  const a = hi;
  const b = lo;
  const ya = m.y[a];
  const yb = m.y[b];
  if (!Number.isFinite(ya) || !Number.isFinite(yb)) return undefined;
  return ya + ((yb - ya) * (x - xs[a])) / (xs[b] - xs[a]);
}

/** Mean, min and max across member lines at every x any member has (members lacking x are interpolated). */
export function aggregate(members) {
  const xs = [...new Set(members.flatMap((m) => m.x))].sort((a, b) => a - b);
  const mean = [];
  const min = [];
  const max = [];
  for (const x of xs) {
    let sum = 0;
    let n = 0;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const m of members) {
      const v = valueAt(m, x);
      if (v === undefined) continue;
      sum += v;
      n++;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    mean.push(n ? sum / n : Number.NaN);
    min.push(n ? lo : Number.NaN);
    max.push(n ? hi : Number.NaN);
  }
  return { x: xs, y: mean, min, max };
}

/**
 * Lines of a panel. series: [{run_id, x, y}] (y numbers incl. NaN/±Inf); runs: id -> {name, group}.
 * groupBy: null, or a function run id -> group label.
 */
export function buildLines(series, { names, groupOf, smoothing }) {
  let lines;
  if (groupOf) {
    const groups = new Map();
    for (const s of series) {
      if (s.x.length === 0) continue;
      const g = groupOf(s.run_id);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(s);
    }
    lines = [...groups.entries()]
      .sort(([a], [b]) => String(a).localeCompare(String(b)))
      .map(([g, members]) => ({
        label: `${g} (${members.length} run${members.length === 1 ? "" : "s"})`,
        runIds: members.map((m) => m.run_id),
        ...aggregate(members),
      }));
  } else {
    lines = series
      .filter((s) => s.x.length > 0)
      .map((s) => ({ label: names.get(s.run_id) ?? s.run_id, runIds: [s.run_id], x: s.x, y: s.y }));
  }
  if (smoothing > 0) {
    lines = lines.map((l) => ({
      ...l,
      y: ema(l.y, smoothing),
      ...(l.min ? { min: ema(l.min, smoothing), max: ema(l.max, smoothing) } : {}),
    }));
  }
  return lines;
}

/**
 * uPlot's data: [xs, ...ys] over the union of every line's x. A missing point is undefined (the line goes on); a
 * NaN or ±Infinity is null (a gap) and is returned in `marks` to be drawn as a marker. log: values <= 0 dropped.
 */
export function align(lines, { log }) {
  const xs = [...new Set(lines.flatMap((l) => l.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const cols = [];
  const marks = [];
  const put = (ys, xsOf, mk) => {
    const col = new Array(xs.length).fill(undefined);
    ys.forEach((v, i) => {
      const at = index.get(xsOf[i]);
      if (Number.isFinite(v)) col[at] = log && v <= 0 ? undefined : v;
      else {
        col[at] = null;
        if (mk) mk.push({ x: xsOf[i], kind: Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity" });
      }
    });
    return col;
  };
  for (const l of lines) {
    const mk = [];
    cols.push(put(l.y, l.x, mk));
    marks.push(mk);
    if (l.min) {
      cols.push(put(l.max, l.x, null));
      cols.push(put(l.min, l.x, null));
    }
  }
  return { data: [xs, ...cols], marks };
}
