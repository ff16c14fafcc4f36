import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync } from "node:fs";
import * as path from "node:path";
import { ConfigError } from "./config.js";

/** The data dir holds keys, tokens and request logs: only its owner may enter it. */
export const DATA_DIR_MODE = 0o700;
/** Every file in the data dir that holds a secret or request content. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode bits that let group or others write (create, rename, replace files). */
const GROUP_OTHER_WRITE = 0o022;
/** Mode bits that let group or others read or enter. */
const GROUP_OTHER_ANY = 0o077;

/**
 * Creates the data dir with mode 0700 (parents as needed), or checks an
 * existing one: a dir that group or others can write is refused (anyone
 * could plant or swap the database or the key files), one they can only
 * read is tightened to 0700. Throws ConfigError with what to run.
 */
export function preparePrivateDir(dir: string): void {
  const resolved = path.resolve(dir);
  if (!existsSync(resolved)) mkdirSync(resolved, { recursive: true, mode: DATA_DIR_MODE });
  const stat = lstatSync(resolved);
  if (!stat.isDirectory()) throw new ConfigError(`data dir ${resolved} is not a directory`);
  const mode = stat.mode & 0o777;
  if (mode & GROUP_OTHER_WRITE) {
    throw new ConfigError(
      `data dir ${resolved} is writable by group or others (mode ${mode.toString(8).padStart(4, "0")}): it holds keys and request logs, so llm-mesh refuses to use it. Run: chmod 700 ${resolved}`,
    );
  }
  // mkdir's mode is masked by the umask, and an older version created 0755: make it 0700.
  if (mode & GROUP_OTHER_ANY) chmodSync(resolved, DATA_DIR_MODE);
}

/**
 * Makes `file` exist with mode 0600 before a library (SQLite) creates it
 * with the umask's mode; an existing file is set to 0600. SQLite creates a
 * database's `-wal` and `-shm` files with the database file's mode.
 */
export function ensurePrivateFile(file: string): void {
  if (!existsSync(file)) closeSync(openSync(file, "a", PRIVATE_FILE_MODE));
  chmodSync(file, PRIVATE_FILE_MODE);
}

/** Sets 0600 on whichever of `files` exist (files an older version left readable). */
export function tightenFiles(files: readonly string[]): void {
  for (const file of files) if (existsSync(file)) chmodSync(file, PRIVATE_FILE_MODE);
}
