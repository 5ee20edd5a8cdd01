import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// A file per lead keeps the example free of any database. LEADS_DIR lets tests isolate runs.
const dir = process.env.LEADS_DIR ?? path.join(process.cwd(), '..', '.berth', 'leads');

export interface Lead {
  id: string;
  name: string;
  email: string;
  createdAt: string;
}

export function saveLead(lead: Lead): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${encodeURIComponent(lead.id)}.json`), JSON.stringify(lead));
}

export function findLead(id: string): Lead | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, `${encodeURIComponent(id)}.json`), 'utf8')) as Lead;
  } catch {
    return undefined;
  }
}
