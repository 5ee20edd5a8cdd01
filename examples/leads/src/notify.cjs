// A callback-style handler: Lambda's oldest programming model still works unchanged.
exports.handler = function (event, context, callback) {
  const body = event.body ? JSON.parse(event.body) : {};
  setTimeout(() => {
    console.log('notified', body.to ?? 'nobody', 'for request', context.awsRequestId);
    callback(null, { statusCode: 202, body: JSON.stringify({ queued: true, to: body.to ?? null }) });
  }, 5);
};
