/** A payment provider's webhook: Berth checked the signature and answered 202 before this runs. */
export const handler = async (event: { body?: string }) => {
  const payment = JSON.parse(event.body ?? '{}') as { orderId?: string; status?: string };
  console.log(`payment for order ${payment.orderId}: ${payment.status}`);
};
