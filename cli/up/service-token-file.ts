import { existsSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { generateServiceToken, isServiceToken, processServiceToken, SERVICE_TOKEN_FILE } from "../../lib/rpc/index.js";
import { ConfigError } from "../../lib/runtime/index.js";

/**
 * The service token `llm-mesh up` gives every child (MESH_SERVICE_TOKEN):
 * that env var when set, else the data dir's `service-token`, created on
 * the first start (mode 0600, 256 random bits).
 */
export async function serviceTokenFor(dataDir: string): Promise<string> {
  const fromEnv = processServiceToken();
  if (fromEnv) return fromEnv;
  const file = path.join(dataDir, SERVICE_TOKEN_FILE);
  if (!existsSync(file)) {
    await writeFile(file, `${generateServiceToken()}\n`, { mode: 0o600, flag: "wx" }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }
  await chmod(file, 0o600);
  const token = (await readFile(file, "utf8")).trim();
  if (!isServiceToken(token)) throw new ConfigError(`${file} does not hold a service token: delete it and start again`);
  return token;
}
