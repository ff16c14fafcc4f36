import { ADMIN_FLAGS, ADMIN_FLAGS_USAGE, AdminClient, durationFlag, printJson, printTable } from "./admin-client.js";
import { intFlag, parseCommandArgs, UsageError } from "./args.js";

export const KEYS_USAGE = `llm-mesh keys create|list|revoke|rotate ... — manage API keys

  llm-mesh keys create [--account A] [--name N] [--models m1,m2] [--rpm N] [--tpm N] [--max-concurrent N] [--expires 30d] [--json]
      prints the full key once (--json: {id, key, ...})
  llm-mesh keys list [--account A] [--json]      never shows secrets
  llm-mesh keys revoke ID                        every edge refuses the key within a second
  llm-mesh keys rotate ID [--grace 10m] [--json] new secret, same id; the old one works for the grace
${ADMIN_FLAGS_USAGE}`;

interface KeyJson {
  id: string;
  key?: string;
  account: string;
  name: string;
  hint: string;
  models: string[];
  rpm: number;
  tpm: number;
  max_concurrent?: number;
  expires_at: string | null;
  revoked_at: string | null;
  previous_secret_valid_until: string | null;
}

/** `llm-mesh keys ...`. */
export async function keysCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseCommandArgs(args, {
    ...ADMIN_FLAGS,
    account: { type: "string" },
    name: { type: "string" },
    models: { type: "string" },
    rpm: { type: "string" },
    tpm: { type: "string" },
    "max-concurrent": { type: "string" },
    expires: { type: "string" },
    grace: { type: "string" },
  });
  const [action, id, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(" ")}`);
  const needsId = action === "revoke" || action === "rotate";
  if (needsId && !id) throw new UsageError(`keys ${action} needs a key id`);
  if (!needsId && id) throw new UsageError(`unexpected argument: ${id}`);
  switch (action) {
    case "create": {
      const body = {
        account: values.account,
        name: values.name,
        models: values.models
          ? values.models
              .split(",")
              .map((m) => m.trim())
              .filter(Boolean)
          : undefined,
        rpm: intFlag("rpm", values.rpm, 0),
        tpm: intFlag("tpm", values.tpm, 0),
        max_concurrent: intFlag("max-concurrent", values["max-concurrent"], 0),
        expires_in_ms: durationFlag("expires", values.expires),
      };
      const client = await AdminClient.fromFlags(values);
      const key = await client.request<KeyJson>("POST", "keys", body);
      if (values.json) return printJson(key);
      process.stdout.write(`Created key ${key.id} (account ${key.account}, name "${key.name}")\n\n  ${key.key}\n\nStore it now: it is shown only once.\n`);
      return;
    }
    case "list": {
      const client = await AdminClient.fromFlags(values);
      const query = values.account ? `?account=${encodeURIComponent(values.account)}` : "";
      const { data } = await client.request<{ data: KeyJson[] }>("GET", `keys${query}`);
      if (values.json) return printJson(data);
      printTable(
        ["ID", "ACCOUNT", "NAME", "KEY", "MODELS", "RPM", "TPM", "CONC", "EXPIRES", "STATUS"],
        data.map((k) => [
          k.id,
          k.account,
          k.name,
          k.hint,
          k.models.join(",") || "*",
          String(k.rpm || "-"),
          String(k.tpm || "-"),
          String(k.max_concurrent || "-"),
          k.expires_at ?? "never",
          status(k),
        ]),
      );
      return;
    }
    case "revoke": {
      const client = await AdminClient.fromFlags(values);
      const key = await client.request<KeyJson>("POST", `keys/${encodeURIComponent(id)}/revoke`, {});
      if (values.json) return printJson(key);
      process.stdout.write(`Revoked key ${key.id}\n`);
      return;
    }
    case "rotate": {
      const graceMs = durationFlag("grace", values.grace);
      const client = await AdminClient.fromFlags(values);
      const key = await client.request<KeyJson>("POST", `keys/${encodeURIComponent(id)}/rotate`, { grace_ms: graceMs });
      if (values.json) return printJson(key);
      const grace = key.previous_secret_valid_until ? `the old secret works until ${key.previous_secret_valid_until}` : "the old secret no longer works";
      process.stdout.write(`Rotated key ${key.id}; ${grace}\n\n  ${key.key}\n\nStore it now: it is shown only once.\n`);
      return;
    }
    default:
      throw new UsageError(action ? `unknown action "${action}"` : "missing action: create, list, revoke or rotate");
  }
}

function status(k: KeyJson): string {
  if (k.revoked_at) return "revoked";
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return "expired";
  return "active";
}
