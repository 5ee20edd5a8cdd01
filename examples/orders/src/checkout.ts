import { send } from 'berth/client';

interface Order {
  id: string;
  items: { sku: string; quantity: number }[];
}

/** Accepts an order and queues it; the order id doubles as the idempotency key, so a client retry queues nothing twice. */
export const handler = async (event: { body?: string }) => {
  let order: Order;
  try {
    order = JSON.parse(event.body ?? '');
  } catch {
    return { statusCode: 400, body: JSON.stringify({ message: 'send a JSON order: {"id": "...", "items": [...]}' }) };
  }
  if (typeof order.id !== 'string' || !Array.isArray(order.items)) {
    return { statusCode: 400, body: JSON.stringify({ message: 'an order needs an "id" string and an "items" list' }) };
  }
  const { messageId, duplicate } = await send('orders', order, { idempotencyKey: order.id });
  return { statusCode: 202, body: JSON.stringify({ orderId: order.id, messageId, duplicate }) };
};
