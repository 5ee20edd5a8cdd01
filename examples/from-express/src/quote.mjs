// A Lambda handler written for API Gateway: it runs inside Express through toExpress.
const PRICES = { tea: 450, coffee: 700 };

export const handler = async (event) => {
  const sku = event.pathParameters?.sku;
  const quantity = Number(JSON.parse(event.body || '{}').quantity ?? 1);
  if (!(sku in PRICES)) return { statusCode: 404, body: JSON.stringify({ message: `unknown sku ${sku}` }) };
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sku, quantity, cents: PRICES[sku] * quantity }) };
};
