/** The IPC message a launcher sends a standby shard: the environment of the shard it becomes. */
export interface StandbyAssignment {
  type: "assign";
  env: Record<string, string>;
}

/**
 * `MESH_SHARD_STANDBY=1`: a spare shard process a launcher starts ahead of
 * need, with Node and the shard's modules already loaded, so a model added at
 * run time is served without waiting for a process to boot. It waits for one
 * `assign` message over IPC, takes that environment (model, backend, port)
 * and then starts as any shard does. It exits when the launcher goes away.
 */
export async function waitForAssignment(): Promise<void> {
  if (process.env.MESH_SHARD_STANDBY !== "1") return;
  const orphaned = (): never => process.exit(0);
  await new Promise<void>((resolve) => {
    const onMessage = (message: unknown): void => {
      const m = message as Partial<StandbyAssignment> | null;
      if (!m || m.type !== "assign" || typeof m.env !== "object" || m.env === null) return;
      process.off("message", onMessage);
      process.off("disconnect", orphaned);
      for (const [key, value] of Object.entries(m.env)) if (typeof value === "string") process.env[key] = value;
      delete process.env.MESH_SHARD_STANDBY;
      resolve();
    };
    process.on("message", onMessage);
    process.once("disconnect", orphaned);
    // Ready for an assignment: the launcher hands one only to a standby that said so.
    process.send?.({ type: "standby" });
  });
}
