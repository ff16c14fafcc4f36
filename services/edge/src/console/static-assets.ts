import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** The console's page, script and style: plain files, hand-written, no bundler, nothing from a CDN. */
export interface StaticAsset {
  body: Buffer;
  contentType: string;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * Where the assets are: beside this module once `npm run build` copied them
 * into dist/, else in the source tree (a build that ran tsc alone).
 */
export function assetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const beside = path.join(here, "assets");
  if (existsSync(path.join(beside, "index.html"))) return beside;
  const source = here.replace(`${path.sep}dist${path.sep}`, path.sep);
  return path.join(source, "assets");
}

/** Reads every asset once, at start: a handful of small files, served from memory by name. */
export function loadAssets(dir = assetsDir()): Map<string, StaticAsset> {
  const assets = new Map<string, StaticAsset>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (contentType) assets.set(name, { body: readFileSync(path.join(dir, name)), contentType });
  }
  if (!assets.has("index.html")) throw new Error(`console assets missing in ${dir}`);
  return assets;
}
