import { readFile, writeFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../lib/runtime/index.js";
import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, printJson, printTable } from "./admin-client.js";
import { parseCommandArgs, UsageError } from "./args.js";

export const EXPERIMENTS_USAGE = `llm-mesh experiments set FILE.yaml [--replace] | list | report NAME [--json] [--svg FILE] | stop NAME — A/B experiments

  set FILE.yaml   create or update the experiments in FILE (an \`experiments:\` list, as in mesh.yaml);
                  --replace also stops every running experiment the file does not list
  list            every experiment: arms and weights, shadow, state, requests
  report NAME     per-arm counts, means and percentiles with 95 % intervals, the always-valid
                  comparison, the sample-ratio check and the verdict; --json for the report as
                  JSON, --svg FILE to write the difference with its interval over time
  stop NAME       end assignment (the model goes back to its first backend); the report stays
${ADMIN_FLAGS_USAGE}`;

interface ExperimentJson {
  name: string;
  model: string;
  unit: string;
  arms: { backend: string; weight: number }[];
  shadow?: { backend: string; percent: number };
  state: string;
  requests: number;
  since: string;
}

/** `llm-mesh experiments ...`. */
export async function experimentsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, { ...ADMIN_FLAGS, replace: { type: "boolean" }, svg: { type: "string" } });
  const [sub, arg, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const needsArg = sub === "set" || sub === "report" || sub === "stop";
  if (needsArg && !arg) throw new UsageError(`experiments ${sub} needs ${sub === "set" ? "a FILE.yaml" : "an experiment NAME"}`);
  switch (sub) {
    case "set": {
      const experiments = await readExperimentsFile(arg);
      const client = await AdminClient.fromFlags(values);
      const { data } = await client.request<{ data: ExperimentJson[] }>("POST", "experiments", { experiments, replace: values.replace ?? false });
      return values.json ? printJson(data) : printExperiments(data);
    }
    case "list": {
      const client = await AdminClient.fromFlags(values);
      const { data } = await client.request<{ data: ExperimentJson[] }>("GET", "experiments");
      return values.json ? printJson(data) : printExperiments(data);
    }
    case "report": {
      const client = await AdminClient.fromFlags(values);
      const res = await client.request<{ report: unknown; text: string; svg: string }>("GET", `experiments/${encodeURIComponent(arg)}/report?format=all`);
      if (values.svg) await writeFile(values.svg, res.svg);
      if (values.json) return printJson(res.report);
      process.stdout.write(res.text);
      if (values.svg) process.stdout.write(`\nplot written to ${values.svg}\n`);
      return;
    }
    case "stop": {
      const client = await AdminClient.fromFlags(values);
      const stopped = await client.request<ExperimentJson>("POST", `experiments/${encodeURIComponent(arg)}/stop`);
      return values.json ? printJson(stopped) : printExperiments([stopped]);
    }
    default:
      throw new UsageError(sub ? `unknown experiments command "${sub}"` : "say set, list, report or stop");
  }
}

/** The `experiments:` list of a YAML (or JSON) file; a bare list is accepted too. */
export async function readExperimentsFile(file: string): Promise<unknown[]> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { experiments?: unknown } | null)?.experiments;
  if (!Array.isArray(list)) throw new ConfigError(`${file}: expected an \`experiments:\` list`);
  return list as unknown[];
}

function printExperiments(data: ExperimentJson[]): void {
  printTable(
    ["NAME", "MODEL", "STATE", "ARMS", "SHADOW", "UNIT", "REQUESTS", "SINCE"],
    data.map((e) => [
      e.name,
      e.model,
      e.state,
      e.arms.map((a) => `${a.backend}:${a.weight}`).join(" "),
      e.shadow ? `${e.shadow.backend} ${e.shadow.percent}%` : "-",
      e.unit,
      String(e.requests),
      e.since,
    ]),
  );
}
