import { json, type HttpEvent } from './http.js';
import { saveLead } from './store.js';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

// POST /lead/{leadId} with {name, email}.
export const handler = async (event: HttpEvent) => {
  const leadId = event.pathParameters?.leadId;
  if (!leadId) return json(400, { message: 'leadId is required in the path' });
  let input: { name?: unknown; email?: unknown };
  try {
    const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : (event.body ?? '');
    input = JSON.parse(raw || '{}');
  } catch {
    return json(400, { message: 'body must be JSON: {"name": "...", "email": "..."}' });
  }
  const errors: string[] = [];
  if (typeof input.name !== 'string' || input.name.trim() === '') errors.push('name is required');
  if (typeof input.email !== 'string' || !EMAIL.test(input.email)) errors.push('email must be a valid address');
  if (errors.length > 0) return json(400, { message: 'invalid lead', errors });

  const lead = { id: leadId, name: (input.name as string).trim(), email: input.email as string, createdAt: new Date().toISOString() };
  saveLead(lead);
  console.log('created lead', lead.id, 'in table', process.env.TABLE);
  return json(201, lead);
};
