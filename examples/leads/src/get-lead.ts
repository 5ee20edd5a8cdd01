import { json, type HttpEvent } from './http.js';
import { findLead } from './store.js';

// GET /lead/{leadId}
export const handler = async (event: HttpEvent) => {
  const lead = findLead(event.pathParameters?.leadId ?? '');
  return lead ? json(200, lead) : json(404, { message: `no lead ${event.pathParameters?.leadId}` });
};
