// The worker's handler as it ran on Lambda from its container image: nothing here knows about
// Berth. It receives SQS batches (the seeder's random strings) and reports only the bad messages
// back (ReportBatchItemFailures), so one poison message does not send the whole batch round again.
import { createHash } from 'node:crypto';

// Logged once per cold start: which runtime and task root the image came up in.
console.log(`consumer starting: node ${process.version}, ${process.env.AWS_EXECUTION_ENV ?? 'container'}, task root ${process.env.LAMBDA_TASK_ROOT ?? process.cwd()}`);

export const handler = async (event) => {
  const batchItemFailures = [];
  let processed = 0;
  for (const record of event.Records) {
    const body = record.body ?? '';
    if (body.trim() === '' || body.toLowerCase().includes('poison')) {
      console.error(`rejected message ${record.messageId}: ${body === '' ? 'empty body' : 'marked poison'} (receive ${record.attributes?.ApproximateReceiveCount ?? '?'})`);
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    console.log(`message ${record.messageId}: ${body.length} chars, upper ${body.toUpperCase().slice(0, 12)}, sha256 ${sha256}`);
    processed++;
  }
  console.log(`processed ${processed} messages, ${batchItemFailures.length} failed`);
  return { batchItemFailures };
};
