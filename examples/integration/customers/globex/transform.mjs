/**
 * globex's own code: flattens an invoice XML from globex's Dropbox into the partner's invoice
 * record, amounts in cents. A different shape from acme's, written by a different customer;
 * Berth runs it in sandboxes of its own, never alongside acme's code.
 *
 * input: { file: "invoice-gx-0017.xml", xml: "<?xml ...><Invoice>...</Invoice>" }
 */
function text(xml, tag) {
  const match = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  if (!match) throw new Error(`invoice has no <${tag}>`);
  return match[1].trim();
}

export async function handler(event) {
  const { file, xml } = event;
  const items = [...xml.matchAll(/<Item>([\s\S]*?)<\/Item>/g)].map(([, item]) => ({
    description: text(item, 'Description'),
    cents: Math.round(Number(text(item, 'Hours')) * Number(text(item, 'Rate')) * 100),
  }));
  const record = {
    kind: 'invoice',
    invoiceNumber: text(xml, 'Number'),
    issued: text(xml, 'IssueDate'),
    due: text(xml, 'DueDate'),
    currency: text(xml, 'Currency'),
    amountCents: items.reduce((sum, item) => sum + item.cents, 0),
    itemCount: items.length,
    file,
  };
  console.log(`invoice ${record.invoiceNumber}: ${record.itemCount} items, ${record.amountCents / 100} ${record.currency}`);
  return record;
}
