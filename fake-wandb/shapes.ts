/**
 * The `sdkShapesOnly` checks: request shapes the official `wandb` client never sends, which a strict fake rejects so
 * that the product's capability fallbacks get exercised. A document is checked once (cached with its parse); the
 * `runs(first:)` limit needs the request's variables and is checked per request.
 */
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from "graphql";

export const MAX_RUNS_FIRST = 1000;

export interface ShapeInfo {
  /** A static problem (aliased run fields under project, files inside runs), or null. */
  problem: string | null;
  /** The `first` argument of every `runs` field, for the per-request limit. */
  runsFirst: ValueNode[];
}

function collectFields(
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  out: FieldNode[] = [],
  seen: Set<string> = new Set(),
): FieldNode[] {
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) out.push(sel);
    else if (sel.kind === Kind.INLINE_FRAGMENT) collectFields(sel.selectionSet, fragments, out, seen);
    else if (sel.kind === Kind.FRAGMENT_SPREAD) {
      const name = sel.name.value;
      const frag = fragments.get(name);
      if (frag && !seen.has(name)) {
        seen.add(name);
        collectFields(frag.selectionSet, fragments, out, seen);
        seen.delete(name);
      }
    }
  }
  return out;
}

export function analyzeShapes(doc: DocumentNode): ShapeInfo {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const info: ShapeInfo = { problem: null, runsFirst: [] };
  const walk = (set: SelectionSetNode, insideRuns: boolean, depth: number): void => {
    if (depth > 64) return;
    for (const f of collectFields(set, fragments)) {
      const name = f.name.value;
      if (insideRuns && name === "files" && info.problem === null) {
        info.problem = 'Cannot query field "files" on runs edges: query each run\'s files separately';
      }
      if (name === "project" && f.selectionSet) {
        for (const field of ["run", "sweep"]) {
          const keys = new Set(
            collectFields(f.selectionSet, fragments)
              .filter((x) => x.name.value === field)
              .map((x) => (x.alias ?? x.name).value),
          );
          if (keys.size > 1 && info.problem === null) {
            info.problem = `Cannot query field "${field}" more than once on "project" (${keys.size} aliases)`;
          }
        }
      }
      if (name === "runs") {
        const first = f.arguments?.find((a) => a.name.value === "first");
        if (first) info.runsFirst.push(first.value);
      }
      if (f.selectionSet) walk(f.selectionSet, insideRuns || name === "runs", depth + 1);
    }
  };
  for (const d of doc.definitions) if (d.kind === Kind.OPERATION_DEFINITION) walk(d.selectionSet, false, 0);
  return info;
}

/** The largest `runs(first:)` of this request, from literals, variables and variable defaults. */
export function maxRunsFirst(
  info: ShapeInfo,
  operation: OperationDefinitionNode | undefined,
  variables: Record<string, unknown>,
): number {
  let max = 0;
  for (const v of info.runsFirst) {
    let n: unknown;
    if (v.kind === Kind.INT) n = Number(v.value);
    else if (v.kind === Kind.VARIABLE) {
      const name = v.name.value;
      if (variables[name] !== undefined) n = variables[name];
      else {
        const def = operation?.variableDefinitions?.find((d) => d.variable.name.value === name)?.defaultValue;
        if (def?.kind === Kind.INT) n = Number(def.value);
      }
    }
    if (typeof n === "number" && n > max) max = n;
  }
  return max;
}
