import { z } from "zod";

/**
 * Parses `env` with a zod schema and fails fast with a message that names
 * every bad variable.
 */
export function parseConfig<T extends z.ZodType>(service: string, schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  throw new ConfigError(`${service}: invalid configuration\n${problems.join("\n")}`);
}

/** A configuration problem; printed without a stack trace. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** A port number from an env string; 0 means "pick a free one". */
export const portSchema = z.coerce.number().int().min(0).max(65_535);

/** A positive integer from an env string. */
export const positiveIntSchema = z.coerce.number().int().positive();

/** A JSON document from an env string, then validated by `inner`. */
export function jsonSchema<T extends z.ZodType>(inner: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: "custom", message: "not valid JSON" });
        return z.NEVER;
      }
    })
    .pipe(inner);
}
