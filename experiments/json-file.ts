// Reading a JSON file: one ptslab wrote (a cell's result.json, cell.json, error.json, history.json; a run's run.json
// and results.json; a training record) or one a user names (an allocation). The one place that turns a missing file
// or one that does not parse (a truncated copy, a merge conflict) into an error naming the file and what it was for.

import { existsSync, readFileSync } from 'node:fs';
import { PtslabError } from '../core/errors.js';

/** A JSON file that is missing or does not parse; the message starts with what the file was for. */
export class JsonFileError extends PtslabError {}

/** The parsed contents of `path`; `what` (e.g. "allocation") starts the error message. */
export function readJsonFile<T>(path: string, what: string): T {
  if (!existsSync(path)) throw new JsonFileError(`${what}: file not found: ${path}`);
  return parse<T>(path, what);
}

/** The parsed contents of `path`, or undefined when there is no such file (a cell that has not finished). */
export function readJsonIfExists<T>(path: string, what: string): T | undefined {
  return existsSync(path) ? parse<T>(path, what) : undefined;
}

function parse<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new JsonFileError(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
}
