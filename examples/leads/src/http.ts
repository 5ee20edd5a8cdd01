export interface HttpEvent {
  pathParameters?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

export function json(statusCode: number, body: unknown) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
