import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, printJson, printTable } from "./admin-client.js";
import { parseCommandArgs, UsageError } from "./args.js";

export const USAGE_USAGE = `llm-mesh usage [--account A] [--from DATE] [--to DATE] [--by day|model|key] [--json] — token usage

  --from, --to  a date (2025-01-31), an ISO instant or Unix milliseconds; --to is exclusive
  --by          group by day (default), model or key
${ADMIN_FLAGS_USAGE}`;

interface UsageJson {
  group: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** `llm-mesh usage`. */
export async function usageCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(
    args,
    { ...ADMIN_FLAGS, account: { type: "string" }, from: { type: "string" }, to: { type: "string" }, by: { type: "string" } },
    false,
  );
  const by = values.by ?? "day";
  if (!["day", "model", "key"].includes(by)) throw new UsageError(`--by must be day, model or key, got "${by}"`);
  const query = new URLSearchParams({ by });
  if (values.account) query.set("account", values.account);
  if (values.from) query.set("from", values.from);
  if (values.to) query.set("to", values.to);
  const client = await AdminClient.fromFlags(values);
  const { data } = await client.request<{ data: UsageJson[] }>("GET", `usage?${query}`);
  if (values.json) return printJson(data);
  printTable(
    [by.toUpperCase(), "REQUESTS", "PROMPT", "COMPLETION", "TOTAL"],
    data.map((r) => [r.group, String(r.requests), String(r.prompt_tokens), String(r.completion_tokens), String(r.total_tokens)]),
  );
}
