import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../package-root.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Append-only numbered migrations for one SQL dialect (migrations/<dialect>/NNNN_name.sql). */
export function loadMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const dir = path.join(packageRoot(), 'migrations', dialect);
  return readdirSync(dir)
    .filter((file) => /^\d{4}_.+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: readFileSync(path.join(dir, file), 'utf8'),
    }));
}
