/**
 * acme's own code: turns an order XML from acme's Dropbox into the JSON order the partner's API
 * takes. Berth runs it as the step `transform` of flow acme-sync, in a sandbox process that only
 * ever runs acme's code (tenant isolation); it sees the step's input and nothing of globex.
 *
 * input: { file: "order-a-1001.xml", xml: "<?xml ...><order id=...>...</order>" }
 */
const attributes = (tag) => Object.fromEntries([...tag.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));

export const handler = async ({ file, xml }) => {
  const orderTag = /<order\b([^>]*)>/.exec(xml);
  if (!orderTag) throw new Error(`${file} is not an acme order: no <order> element`);
  const order = attributes(orderTag[1]);
  const lines = [...xml.matchAll(/<line\b([^>]*)\/>/g)].map((m) => {
    const line = attributes(m[1]);
    return { sku: line.sku, quantity: Number(line.qty), unitPrice: Number(line.price) };
  });
  const total = Math.round(lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0) * 100) / 100;
  console.log(`order ${order.id} from ${file}: ${lines.length} lines, total ${total} ${order.currency}`);
  return {
    orderId: order.id,
    placedAt: order.placed,
    buyer: /<buyer>([^<]*)<\/buyer>/.exec(xml)?.[1] ?? null,
    currency: order.currency,
    lines,
    total,
    source: `dropbox:/inbox/${file}`,
  };
};
