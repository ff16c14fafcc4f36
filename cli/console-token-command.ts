import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, durationFlag, printJson } from "./admin-client.js";
import { parseCommandArgs, UsageError } from "./args.js";

export const CONSOLE_TOKEN_USAGE = `llm-mesh console-token --account A [--ttl 12h] — a short-lived sign-in token for the account console

  Prints a token that signs in to <mesh>/console/ as account A, seeing and changing only
  that account's keys, usage and retention. The admin token itself signs in as admin.
  --account  the account (required)
  --ttl      lifetime: 90s, 10m, 12h (default), up to 7d
${ADMIN_FLAGS_USAGE}`;

interface ConsoleTokenJson {
  token: string;
  account: string | null;
  expires_at: string | null;
}

/** `llm-mesh console-token`: asks the admin API (auth signs) for an account-scoped console token. */
export async function consoleTokenCommand(args: string[]): Promise<void> {
  const { values } = parseCommandArgs(args, { ...ADMIN_FLAGS, account: { type: "string" }, ttl: { type: "string" } }, false);
  if (!values.account) throw new UsageError("console-token needs --account");
  const ttlMs = durationFlag("ttl", values.ttl);
  const client = await AdminClient.fromFlags(values);
  const issued = await client.request<ConsoleTokenJson>("POST", "console-tokens", { account: values.account, ...(ttlMs > 0 ? { ttl_ms: ttlMs } : {}) });
  if (values.json) return printJson(issued);
  process.stdout.write(`${issued.token}\n`);
  process.stderr.write(`Signs in to ${client.baseUrl}/console/ as account ${issued.account} until ${issued.expires_at}.\n`);
}
