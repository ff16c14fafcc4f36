import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, printJson, printTable } from "./admin-client.js";
import { parseCommandArgs, UsageError } from "./args.js";

export const ACCOUNTS_USAGE = `llm-mesh accounts create|list|set ... — manage accounts

  llm-mesh accounts create ID [--name N] [--json]
  llm-mesh accounts list [--json]
  llm-mesh accounts set ID --retention on|off   off: no request content is ever stored
${ADMIN_FLAGS_USAGE}`;

interface AccountJson {
  id: string;
  name: string;
  retention: boolean;
  created_at: string | null;
}

/** `llm-mesh accounts ...`. */
export async function accountsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, { ...ADMIN_FLAGS, name: { type: "string" }, retention: { type: "string" } });
  const [action, id, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  switch (action) {
    case "create": {
      if (!id) throw new UsageError("accounts create needs an account id");
      const client = await AdminClient.fromFlags(values);
      const account = await client.request<AccountJson>("POST", "accounts", { id, name: values.name });
      if (values.json) return printJson(account);
      process.stdout.write(`Created account ${account.id}\n`);
      return;
    }
    case "list": {
      const client = await AdminClient.fromFlags(values);
      const { data } = await client.request<{ data: AccountJson[] }>("GET", "accounts");
      if (values.json) return printJson(data);
      printTable(
        ["ID", "NAME", "RETENTION", "CREATED"],
        data.map((a) => [a.id, a.name, a.retention ? "on" : "off", a.created_at ?? ""]),
      );
      return;
    }
    case "set": {
      if (!id) throw new UsageError("accounts set needs an account id");
      if (values.retention !== "on" && values.retention !== "off") throw new UsageError("accounts set needs --retention on or --retention off");
      const client = await AdminClient.fromFlags(values);
      const account = await client.request<AccountJson>("PATCH", `accounts/${encodeURIComponent(id)}`, { retention: values.retention === "on" });
      if (values.json) return printJson(account);
      process.stdout.write(`Account ${account.id}: retention ${account.retention ? "on (request logs kept 30 days)" : "off (no request content stored)"}\n`);
      return;
    }
    default:
      throw new UsageError(action ? `unknown action "${action}"` : "missing action: create, list or set");
  }
}
