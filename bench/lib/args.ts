/** The bench's command line: `[--quick] [--scenario S1,..] [--tools ours,sdk,original] [--peer-timeout MIN] [--docs|--no-docs]`. */
import { SCENARIO_IDS, type ScenarioId } from "./scenarios.js";
import type { ToolGroup } from "./tools.js";

export interface Args {
  quick: boolean;
  scenarios: ScenarioId[];
  tools: ToolGroup[];
  peerTimeoutMin?: number;
  docs: boolean;
}

function usage(msg: string): never {
  process.stderr.write(
    `bench: ${msg}\nusage: npm run bench -- [--quick] [--scenario S1,S2,S3,S4,S5] [--tools ours,sdk,original] [--peer-timeout MIN] [--docs|--no-docs] | --report-only\n`,
  );
  process.exit(2);
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { quick: false, scenarios: [...SCENARIO_IDS], tools: ["ours", "sdk", "original"], docs: true };
  let docsSet = false;
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    const value = (): string => {
      const v = x.includes("=") ? x.slice(x.indexOf("=") + 1) : argv[++i];
      if (v === undefined) usage(`${x} needs a value`);
      return v;
    };
    if (x === "--quick") a.quick = true;
    else if (x === "--docs") {
      a.docs = true;
      docsSet = true;
    } else if (x === "--no-docs") {
      a.docs = false;
      docsSet = true;
    } else if (x.startsWith("--scenario")) {
      const list = value()
        .split(",")
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
      for (const s of list) if (!SCENARIO_IDS.includes(s as ScenarioId)) usage(`unknown scenario ${s}`);
      a.scenarios = SCENARIO_IDS.filter((s) => list.includes(s));
    } else if (x.startsWith("--tools")) {
      const list = value()
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
      for (const t of list) if (!["ours", "sdk", "original"].includes(t)) usage(`unknown tool ${t}`);
      a.tools = list as ToolGroup[];
    } else if (x.startsWith("--peer-timeout")) {
      const n = Number(value());
      if (!(n > 0 && n <= 240)) usage("--peer-timeout takes minutes, 0 < MIN <= 240");
      a.peerTimeoutMin = n;
    } else usage(`unknown argument ${x}`);
  }
  if (!docsSet) a.docs = !a.quick;
  return a;
}
