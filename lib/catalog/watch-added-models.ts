import type { Client } from "@connectrpc/connect";
import { WatchModelsResponse_Kind as WatchKind } from "../../src/gen/mesh/auth/v1/models_pb.js";
import type { ModelAdminService } from "../../src/gen/mesh/auth/v1/models_pb.js";
import type { Logger } from "../runtime/index.js";
import { parseAddedModelEntry } from "./added-model.js";
import type { CatalogModel } from "./catalog.js";

/** A watch silent this long (heartbeats come every 2 s) is presumed dead and opened again. */
export const MODEL_WATCH_SILENCE_MS = 6_000;
const RETRY_MS = 500;

/** What a follower of the added models does with them. */
export interface AddedModelsListener {
  added(model: CatalogModel): void | Promise<void>;
  removed(name: string): void | Promise<void>;
  /** The view is complete (after the first snapshot, and again after each reconnect). */
  synced?(): void;
}

/**
 * Follows auth's `WatchModels` until `signal` aborts: every stored model is
 * reported once as added, each removal once, in order. The watch is opened
 * again when it breaks or goes silent; after a reconnect, models that
 * disappeared meanwhile are reported removed. Entries that do not pass the
 * added-model checks are skipped with a warning.
 */
export async function watchAddedModels(
  client: Client<typeof ModelAdminService>,
  listener: AddedModelsListener,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const known = new Map<string, string>();
  while (!signal.aborted) {
    const attempt = new AbortController();
    const stop = AbortSignal.any([signal, attempt.signal]);
    let silence: NodeJS.Timeout | undefined;
    const alive = (): void => {
      clearTimeout(silence);
      silence = setTimeout(() => attempt.abort(), MODEL_WATCH_SILENCE_MS);
    };
    alive();
    const seen = new Set<string>();
    let synced = false;
    try {
      for await (const change of client.watchModels({}, { signal: stop })) {
        alive();
        if (change.kind === WatchKind.ADDED && change.model) {
          const { name, entryJson } = change.model;
          seen.add(name);
          if (known.get(name) === entryJson) continue;
          let model: CatalogModel;
          try {
            model = parseAddedModelEntry(entryJson);
          } catch (err) {
            log.warn({ model: name, err: (err as Error).message }, "stored model skipped: its entry does not pass the checks");
            continue;
          }
          if (known.has(name)) await listener.removed(name);
          known.set(name, entryJson);
          await listener.added(model);
        } else if (change.kind === WatchKind.REMOVED && change.model) {
          seen.delete(change.model.name);
          if (known.delete(change.model.name)) await listener.removed(change.model.name);
        } else if (change.kind === WatchKind.SYNCED && !synced) {
          synced = true;
          for (const name of [...known.keys()]) {
            if (seen.has(name)) continue;
            known.delete(name);
            await listener.removed(name);
          }
          listener.synced?.();
        }
      }
    } catch (err) {
      if (signal.aborted) break;
      log.debug({ err: (err as Error).message }, "model watch broken; opening it again");
    } finally {
      clearTimeout(silence);
      attempt.abort();
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}
