import { publish } from 'berth/client';

interface SqsRecord {
  messageId: string;
  body: string;
}

/** Fulfils a batch of orders; an order that cannot be fulfilled is reported alone and retried alone. */
export const handler = async (event: { Records: SqsRecord[] }) => {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of event.Records) {
    const order = JSON.parse(record.body) as { id: string; items: { sku: string; quantity: number }[] };
    if (order.items.some((item) => item.quantity <= 0)) {
      console.warn(`order ${order.id} has an item with quantity <= 0; retrying it alone`);
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    await publish('order-events', { orderId: order.id, status: 'fulfilled' }, { attributes: { status: 'fulfilled' } });
    console.log(`fulfilled order ${order.id}`);
  }
  return { batchItemFailures };
};
