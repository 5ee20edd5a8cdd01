/** Subscribed to order-events: an SNS-shaped event, run asynchronously with retries. */
export const handler = async (event: { Records: { Sns: { Message: string } }[] }, context: { attempt: number }) => {
  for (const record of event.Records) {
    const { orderId } = JSON.parse(record.Sns.Message) as { orderId: string };
    console.log(`receipt sent for order ${orderId} (attempt ${context.attempt})`);
  }
};
