/**
 * The SQS Query protocol (form-encoded in, XML out), driven by a real Query-protocol
 * client: Debian's python3-boto3 (botocore 1.29, whose SQS model is "query"), running
 * Python scripts against a real Berth. Plus raw requests for what boto3 will not send.
 * Needs python3 with that boto3; .ci/run installs it. Without it the tests fail, naming what to install.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const run = promisify(execFile);

const BERTH_YML = `
events:
  maxPayload: 64kb
queues:
  orders: { visibilityTimeout: 2 }
functions:
  root:
    handler: root.handler
    events:
      - http: POST /
`;

const ROOT = `export const handler = async (event) => ({ statusCode: 200, body: 'user route got ' + event.body });
`;

/** Seed 003's SQS queue seeder: random upper-case strings sent to every queue in SQS_QUEUE_URLS, in batches. */
const SEEDER = String.raw`import os
import random
import time
import string
import boto3

# SQS queues
SQS_QUEUE_URLS = [
    os.environ["SQS_QUEUE_URL_ECS"],  # queue for ECS,
    os.environ["SQS_QUEUE_URL_LAMBDA"],  # queue for Lambda,
]

# Settings
NUMBER_OF_MSG_BATCHES = int(os.environ.get("NUMBER_OF_MSG_BATCHES", 3))
MAX_MSGS_PER_BATCH = int(os.environ.get("MAX_MSGS_PER_BATCH", 100))
SLEEP_TIME = int(os.environ.get("SLEEP_TIME", 60))

sqs_client = boto3.client("sqs", endpoint_url=os.environ["BERTH_URL"])

def sqs_send_msg(msgs_count):
    MSGS_COUNT = msgs_count

    print(f"[INFO] Number of messages in batch: {MSGS_COUNT}")

    while MSGS_COUNT > 0:
        MESSAGE_CHAR_SIZE = random.randint(10, 50)
        MESSAGE = "".join(random.choices(string.ascii_uppercase, k=MESSAGE_CHAR_SIZE))

        for queue_url in SQS_QUEUE_URLS:
            try:
                print(f"[INFO] Sending message {MESSAGE} to {queue_url}")
                response = sqs_client.send_message(
                    QueueUrl=queue_url, MessageBody=MESSAGE
                )
                print(f"[INFO] Message sent, ID: {response['MessageId']}")
            except Exception as error:
                print(f"[ERROR] Queue URL: {error}")

        MSGS_COUNT -= 1

def handler(event, context):
    NUMBER_OF_MSG_BATCHES_LEFT = NUMBER_OF_MSG_BATCHES
    BATCH_NUMBER = 1

    print(f"[INFO] Number of message batches: {NUMBER_OF_MSG_BATCHES_LEFT}")

    while NUMBER_OF_MSG_BATCHES_LEFT > 0:
        print(f"[INFO] Batch number #{BATCH_NUMBER}")

        NUMBER_OF_MSGS = random.randint(1, MAX_MSGS_PER_BATCH)
        sqs_send_msg(NUMBER_OF_MSGS)

        NUMBER_OF_MSG_BATCHES_LEFT -= 1
        BATCH_NUMBER += 1

        if NUMBER_OF_MSG_BATCHES_LEFT > 0:
            print(f"[INFO] Sleeping {SLEEP_TIME} seconds...")
            time.sleep(SLEEP_TIME)

if __name__ == "__main__":
    handler("", "")
`;

/** Seed 003's consumer: one receive of up to SQS_MAX_NUM_MSGS messages, each printed and deleted. */
const CONSUMER = String.raw`import os
import boto3

QUEUE_URL = os.environ.get("SQS_QUEUE_URL", "")
MAX_NUM_MSGS = int(os.environ.get("SQS_MAX_NUM_MSGS", 10))
VISIBILITY_TO = int(os.environ.get("SQS_VISIBILITY_TO", 15))
WAIT_SECONDS = int(os.environ.get("SQS_WAIT_SECONDS", 10))

sqs_client = boto3.client("sqs", endpoint_url=os.environ["BERTH_URL"])

def handler(event, context):
    get_response = sqs_client.receive_message(
        QueueUrl=QUEUE_URL,
        MaxNumberOfMessages=MAX_NUM_MSGS,
        VisibilityTimeout=VISIBILITY_TO,
        WaitTimeSeconds=WAIT_SECONDS,
    )

    messages = get_response.get("Messages", [])

    messages_length = len(messages)
    print(f"Number of messages received: {messages_length}")

    for msg in messages:
        print(f"Message body: {msg['Body']}")

        del_response = sqs_client.delete_message(
            QueueUrl=QUEUE_URL, ReceiptHandle=msg["ReceiptHandle"]
        )
        print(
            f"Deletion status code: {del_response['ResponseMetadata']['HTTPStatusCode']}"
        )

if __name__ == "__main__":
    handler("", "")
`;

/** Shared by the scripts below: a client for Berth, and SQS's digests written out independently of Berth. */
const COMMON = String.raw`import hashlib, os, struct, time
import boto3, botocore

sqs = boto3.client("sqs", endpoint_url=os.environ["BERTH_URL"])
assert sqs.meta.service_model.protocol == "query", sqs.meta.service_model.protocol

def md5(data):
    return hashlib.md5(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()

def attributes_md5(attributes):
    """SQS's message-attribute digest: sorted names, length-prefixed name, type, transport byte, value."""
    out = b""
    prefixed = lambda b: struct.pack(">I", len(b)) + b
    for name in sorted(attributes):
        value = attributes[name]
        out += prefixed(name.encode()) + prefixed(value["DataType"].encode())
        if "BinaryValue" in value:
            out += b"\x02" + prefixed(value["BinaryValue"])
        else:
            out += b"\x01" + prefixed(value["StringValue"].encode())
    return md5(out)

def error_of(call, **kwargs):
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as err:
        return err
    raise AssertionError(f"{call.__name__} succeeded")
`;

/** Queue attributes, message attributes with their MD5s, XML-hostile bodies, batches and long polls. */
const ROUND_TRIP = String.raw`
url = sqs.create_queue(QueueName="py-roundtrip", Attributes={"VisibilityTimeout": "7", "DelaySeconds": "0"})["QueueUrl"]
assert url.endswith("/000000000000/py-roundtrip"), url
assert sqs.create_queue(QueueName="py-roundtrip", Attributes={"VisibilityTimeout": "7"})["QueueUrl"] == url
assert sqs.get_queue_url(QueueName="py-roundtrip")["QueueUrl"] == url
assert sqs.list_queues(QueueNamePrefix="py-round")["QueueUrls"] == [url]
assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="no-such-prefix")
attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
assert attrs["VisibilityTimeout"] == "7" and attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:py-roundtrip", attrs
assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["DelaySeconds", "QueueArn"])["Attributes"] == {"DelaySeconds": "0", "QueueArn": attrs["QueueArn"]}

# A body with everything XML escapes, a carriage return, and characters beyond ASCII.
body = "<order id=\"1\">&amp; 'quoted'</order>\r\n\ttab \u00e9 \u4e2d \U0001F600 ]]>"
message_attributes = {
    "kind": {"DataType": "String", "StringValue": "paid & <done>"},
    "order.amount": {"DataType": "Number", "StringValue": "120.5"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xff"},
    "label": {"DataType": "String.custom", "StringValue": "x"},
}
sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=message_attributes)
assert sent["MD5OfMessageBody"] == md5(body), sent
assert sent["MD5OfMessageAttributes"] == attributes_md5(message_attributes), sent

got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
assert len(got) == 1, got
m = got[0]
assert m["Body"] == body, repr(m["Body"])
assert m["MessageId"] == sent["MessageId"]
assert m["MD5OfBody"] == md5(m["Body"])
assert m["MessageAttributes"] == message_attributes, m["MessageAttributes"]
assert m["MD5OfMessageAttributes"] == attributes_md5(m["MessageAttributes"])
assert m["Attributes"]["ApproximateReceiveCount"] == "1" and m["Attributes"]["SenderId"] == "000000000000", m["Attributes"]
assert int(m["Attributes"]["SentTimestamp"]) > 0

# Prefix selection of message attributes; the system attributes asked for by name.
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
again = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"], MessageAttributeNames=["kind", "order.*"])["Messages"][0]
assert again["Attributes"] == {"ApproximateReceiveCount": "2"}, again["Attributes"]
assert sorted(again["MessageAttributes"]) == ["kind", "order.amount"], again["MessageAttributes"]
assert again["MD5OfMessageAttributes"] == attributes_md5(again["MessageAttributes"])
sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])

# Batches: every entry with its own MD5s; an invalid entry fails alone.
entries = [
    {"Id": "plain", "MessageBody": "one"},
    {"Id": "with-attrs", "MessageBody": "two & <three>", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "7"}}},
    {"Id": "delayed", "MessageBody": "three", "DelaySeconds": 0},
    {"Id": "bad", "MessageBody": "nul \x00 inside"},
]
batch = sqs.send_message_batch(QueueUrl=url, Entries=entries)
assert sorted(e["Id"] for e in batch["Successful"]) == ["delayed", "plain", "with-attrs"], batch
for entry in batch["Successful"]:
    source = next(e for e in entries if e["Id"] == entry["Id"])
    assert entry["MD5OfMessageBody"] == md5(source["MessageBody"]), entry
    if "MessageAttributes" in source:
        assert entry["MD5OfMessageAttributes"] == attributes_md5(source["MessageAttributes"]), entry
assert [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]] == [("bad", "InvalidMessageContents", True)], batch["Failed"]

received = []
while len(received) < 3:
    received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
assert sorted(m["Body"] for m in received) == ["one", "three", "two & <three>"], received

# ChangeMessageVisibilityBatch and DeleteMessageBatch, each with one bad receipt handle.
changed = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
    {"Id": "ok", "ReceiptHandle": received[0]["ReceiptHandle"], "VisibilityTimeout": 0},
    {"Id": "stale", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 0},
])
assert [e["Id"] for e in changed["Successful"]] == ["ok"], changed
assert [(f["Id"], f["Code"]) for f in changed["Failed"]] == [("stale", "ReceiptHandleIsInvalid")], changed
back = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
assert [m["Body"] for m in back] == [received[0]["Body"]], back
deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
    {"Id": "a", "ReceiptHandle": back[0]["ReceiptHandle"]},
    {"Id": "b", "ReceiptHandle": received[1]["ReceiptHandle"]},
    {"Id": "c", "ReceiptHandle": received[2]["ReceiptHandle"]},
    {"Id": "d", "ReceiptHandle": "not-a-handle"},
])
assert sorted(e["Id"] for e in deleted["Successful"]) == ["a", "b", "c"], deleted
assert [(f["Id"], f["Code"], f["SenderFault"]) for f in deleted["Failed"]] == [("d", "ReceiptHandleIsInvalid", True)], deleted

# A long poll on an empty queue waits WaitTimeSeconds; one with a message arriving returns at once.
start = time.monotonic()
assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
waited = time.monotonic() - start
assert 1.8 <= waited < 5, waited

# FIFO: group and deduplication ids, sequence numbers.
fifo = sqs.create_queue(QueueName="py-jobs.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
first = sqs.send_message(QueueUrl=fifo, MessageBody="a", MessageGroupId="g")
repeat = sqs.send_message(QueueUrl=fifo, MessageBody="a", MessageGroupId="g")
assert repeat["MessageId"] == first["MessageId"] and first["SequenceNumber"], (first, repeat)
fifo_batch = sqs.send_message_batch(QueueUrl=fifo, Entries=[{"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": "g", "MessageDeduplicationId": f"d{i}"} for i in range(3)])
assert [e["Id"] for e in fifo_batch["Successful"]] == ["0", "1", "2"] and all(e["SequenceNumber"] for e in fifo_batch["Successful"]), fifo_batch
bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"])["Messages"]]
assert bodies == ["a", "m0", "m1", "m2"], bodies

# PurgeQueue, DeleteQueue.
sqs.send_message(QueueUrl=url, MessageBody="to purge")
sqs.purge_queue(QueueUrl=url)
assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {"ApproximateNumberOfMessages": "0"}
sqs.delete_queue(QueueUrl=url)
sqs.delete_queue(QueueUrl=fifo)
assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="py-")
print("round trip ok")
`;

/** Errors as boto3 sees them: its modeled exception classes, Code, Type and HTTP status. */
const ERRORS = String.raw`
orders = sqs.get_queue_url(QueueName="orders")["QueueUrl"]

def expect(err, code, status, message=None):
    e = err.response["Error"]
    assert e["Code"] == code and e["Type"] == "Sender", err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status, err.response
    assert err.response["ResponseMetadata"]["RequestId"], err.response
    if message:
        assert message in e["Message"], e["Message"]

try:
    sqs.get_queue_url(QueueName="no-such-queue")
    raise AssertionError("no error")
except sqs.exceptions.QueueDoesNotExist as err:
    expect(err, "AWS.SimpleQueueService.NonExistentQueue", 400, "no-such-queue")
expect(error_of(sqs.send_message, QueueUrl=orders.replace("orders", "gone"), MessageBody="x"), "AWS.SimpleQueueService.NonExistentQueue", 400)
expect(error_of(sqs.delete_message, QueueUrl=orders, ReceiptHandle="bogus"), "ReceiptHandleIsInvalid", 404)
expect(error_of(sqs.receive_message, QueueUrl=orders, MaxNumberOfMessages=11), "InvalidParameterValue", 400, "between 1 and 10")
expect(error_of(sqs.receive_message, QueueUrl=orders, AttributeNames=["Bogus"]), "InvalidAttributeName", 400, "Bogus")
expect(error_of(sqs.send_message, QueueUrl=orders, MessageBody="x", DelaySeconds=901), "InvalidParameterValue", 400, "DelaySeconds")
expect(error_of(sqs.send_message, QueueUrl=orders, MessageBody="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "abc"}}), "InvalidParameterValue", 400, "not a number")
expect(error_of(sqs.send_message_batch, QueueUrl=orders, Entries=[{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)]), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400)
expect(error_of(sqs.send_message_batch, QueueUrl=orders, Entries=[{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}]), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400)
expect(error_of(sqs.create_queue, QueueName="bad-attrs", Attributes={"VisibilityTimeout": "50000"}), "InvalidAttributeValue", 400, "VisibilityTimeout")
expect(error_of(sqs.create_queue, QueueName="orders", Attributes={"VisibilityTimeout": "9"}), "QueueAlreadyExists", 400)
expect(error_of(sqs.set_queue_attributes, QueueUrl=orders, Attributes={"VisibilityTimeout": "5"}), "AWS.SimpleQueueService.UnsupportedOperation", 400, "berth.yml")
print("errors ok")
`;

let berth: RunningBerth;
let python: string;
let scripts: string;

/** The first python3 whose boto3 speaks Query to SQS; recent boto3 speaks JSON to it (covered by sqs-api.test.ts's SDK). */
async function queryPython(): Promise<string> {
  const tried: string[] = [];
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      const { stdout } = await run(candidate, ['-c', 'import boto3, botocore.session; print(boto3.__version__, botocore.session.get_session().get_service_model("sqs").protocol)']);
      if (stdout.trim().endsWith(' query')) return candidate;
      tried.push(`${candidate}: boto3 ${stdout.trim()}`);
    } catch (err) {
      tried.push(`${candidate}: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
    }
  }
  throw new Error(
    `No python3 with a Query-protocol boto3 to test against (${tried.join('; ')}). Install Debian's python3-boto3: apt-get install -y python3-boto3 (.ci/run does this).`,
  );
}

/** Runs a script with the test's python3, pointed at Berth with throwaway credentials. */
async function python3(script: string, env: Record<string, string> = {}): Promise<string> {
  const file = path.join(scripts, `script-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, script);
  try {
    const { stdout } = await run(python, [file], {
      env: {
        ...process.env,
        AWS_PROFILE: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_ENDPOINT_URL: undefined,
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'x',
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        BERTH_URL: berth.url,
        ...env,
      },
      timeout: 60_000,
    });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${(err as Error).message}\nstdout:\n${stdout ?? ''}\nstderr:\n${stderr ?? ''}`);
  }
}

/** A request signed (in form only: Berth does not check signatures) for the sqs service, as any SDK signs. */
const SIGNED = { authorization: 'AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00' };

function query(params: Record<string, string>, options: { path?: string; signed?: boolean; to?: RunningBerth } = {}): Promise<Response> {
  return fetch(`${(options.to ?? berth).url}${options.path ?? '/'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', ...(options.signed === false ? {} : SIGNED) },
    body: new URLSearchParams({ Version: '2012-11-05', ...params }).toString(),
  });
}

/** The same call over the JSON protocol, as @aws-sdk/client-sqs sends it. */
function json(operation: string, members: Record<string, unknown>): Promise<Response> {
  return fetch(`${berth.url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${operation}`, 'x-amzn-query-mode': 'true' },
    body: JSON.stringify(members),
  });
}

/** The text of every <name> element, unescaped. */
function elements(xml: string, name: string): string[] {
  const unescape = (text: string) =>
    text.replace(/&(lt|gt|quot|apos|amp|#x[0-9A-Fa-f]+|#\d+);/g, (_, ref: string) =>
      ref.startsWith('#x') ? String.fromCodePoint(parseInt(ref.slice(2), 16)) : ref.startsWith('#') ? String.fromCodePoint(Number(ref.slice(1))) : { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' }[ref]!,
    );
  return [...xml.matchAll(new RegExp(`<${name}>([^<]*)</${name}>`, 'g'))].map((match) => unescape(match[1]!));
}

async function expectXmlError(response: Response, code: string, status: number, message?: RegExp): Promise<void> {
  const xml = await response.text();
  assert.equal(response.status, status, xml);
  assert.equal(response.headers.get('content-type'), 'text/xml');
  assert.match(xml, /^<\?xml version="1.0"\?><ErrorResponse xmlns="http:\/\/queue.amazonaws.com\/doc\/2012-11-05\/"><Error><Type>Sender<\/Type>/);
  assert.deepEqual(elements(xml, 'Code'), [code], xml);
  assert.match(xml, /<Detail\/><\/Error><RequestId>/);
  assert.deepEqual(elements(xml, 'RequestId'), [response.headers.get('x-amzn-requestid')]);
  if (message) assert.match(elements(xml, 'Message')[0]!, message);
}

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

before(async () => {
  python = await queryPython();
  const dir = makeProject({ 'berth.yml': BERTH_YML, 'root.mjs': ROOT });
  scripts = dir;
  berth = await startBerth(dir);
});

after(async () => {
  if (berth) assert.equal(await berth.stop(), 0);
});

describe('boto3 over the Query protocol', () => {
  test("seed 003's seeder fills two queues and its consumer drains them with MaxNumberOfMessages=10", async () => {
    const ecs = (await python3(`${COMMON}\nprint(sqs.create_queue(QueueName="seed-ecs")["QueueUrl"])`)).trim();
    const lambda = (await python3(`${COMMON}\nprint(sqs.create_queue(QueueName="seed-lambda")["QueueUrl"])`)).trim();
    const seeded = await python3(SEEDER, { SQS_QUEUE_URL_ECS: ecs, SQS_QUEUE_URL_LAMBDA: lambda, NUMBER_OF_MSG_BATCHES: '2', MAX_MSGS_PER_BATCH: '12', SLEEP_TIME: '0' });
    assert.doesNotMatch(seeded, /\[ERROR\]/);
    const sent = [...seeded.matchAll(/\[INFO\] Sending message ([A-Z]+) to (\S+)/g)].map((m) => ({ body: m[1]!, queue: m[2]! }));
    assert.equal([...seeded.matchAll(/\[INFO\] Message sent, ID: [0-9a-f-]{36}/g)].length, sent.length);
    assert.ok(sent.length >= 4, seeded);

    for (const queue of [ecs, lambda]) {
      const expected = sent.filter((m) => m.queue === queue).map((m) => m.body).sort();
      const received: string[] = [];
      for (let runs = 0; received.length < expected.length && runs < 20; runs++) {
        const out = await python3(CONSUMER, { SQS_QUEUE_URL: queue, SQS_WAIT_SECONDS: '1' });
        const bodies = [...out.matchAll(/^Message body: (.*)$/gm)].map((m) => m[1]!);
        assert.equal(Number(/Number of messages received: (\d+)/.exec(out)![1]), bodies.length);
        assert.ok(bodies.length <= 10);
        assert.equal([...out.matchAll(/^Deletion status code: 200$/gm)].length, bodies.length, out);
        received.push(...bodies);
      }
      assert.deepEqual(received.sort(), expected);
      // Everything was deleted: the queue is empty, in flight included (a GET, as some clients send).
      const response = await fetch(`${berth.url}/?Action=GetQueueAttributes&Version=2012-11-05&QueueUrl=${encodeURIComponent(queue)}&AttributeName.1=All`);
      const xml = await response.text();
      assert.equal(response.status, 200, xml);
      const attributes = Object.fromEntries(elements(xml, 'Name').map((name, i) => [name, elements(xml, 'Value')[i]]));
      assert.equal(attributes.ApproximateNumberOfMessages, '0');
      assert.equal(attributes.ApproximateNumberOfMessagesNotVisible, '0');
    }
  });

  test('attributes, MD5s, XML-hostile bodies, batches, visibility, long polls, FIFO, purge and delete round-trip', async () => {
    assert.match(await python3(`${COMMON}\n${ROUND_TRIP}`), /round trip ok/);
  });

  test('errors arrive as the modeled exceptions with the SQS code, type and status', async () => {
    assert.match(await python3(`${COMMON}\n${ERRORS}`), /errors ok/);
  });
});

describe('raw Query requests', () => {
  test('malformed requests get the SQS XML error, never a crash', async () => {
    const QueueUrl = `${berth.url}/000000000000/orders`;
    await expectXmlError(await query({ Action: 'Bogus' }), 'InvalidAction', 400, /Bogus.*SendMessage/);
    await expectXmlError(await query({ Action: 'constructor' }), 'InvalidAction', 400);
    await expectXmlError(await query({}), 'MissingAction', 400, /Action=<Operation>/);
    await expectXmlError(await query({ Action: 'SendMessage', QueueUrl }), 'MissingParameter', 400, /MessageBody/);
    await expectXmlError(await query({ Action: 'GetQueueUrl' }), 'MissingParameter', 400, /QueueName/);
    await expectXmlError(await query({ Action: 'GetQueueUrl', QueueName: 'nope' }), 'AWS.SimpleQueueService.NonExistentQueue', 400, /nope/);
    await expectXmlError(await query({ Action: 'ReceiveMessage', QueueUrl, MaxNumberOfMessages: 'ten' }), 'InvalidParameterValue', 400, /MaxNumberOfMessages.*whole number/);
    await expectXmlError(await query({ Action: 'ReceiveMessage', QueueUrl, WaitTimeSeconds: '1.5' }), 'InvalidParameterValue', 400, /WaitTimeSeconds/);
    await expectXmlError(
      await query({ Action: 'SendMessageBatch', QueueUrl, 'SendMessageBatchRequestEntry.1.Id': 'a', 'SendMessageBatchRequestEntry.1.MessageBody': 'x', 'SendMessageBatchRequestEntry.1.DelaySeconds': 'soon' }),
      'InvalidParameterValue',
      400,
      /SendMessageBatchRequestEntry\.1\.DelaySeconds.*whole number/,
    );
    await expectXmlError(await query({ Action: 'ReceiveMessage', QueueUrl, MaxNumberOfMessages: '0' }), 'InvalidParameterValue', 400, /between 1 and 10/);
    await expectXmlError(await query({ Action: 'ChangeMessageVisibility', QueueUrl, ReceiptHandle: 'x' }), 'MissingParameter', 400, /VisibilityTimeout/);
    await expectXmlError(await query({ Action: 'GetQueueAttributes', QueueUrl, 'AttributeName.first': 'All' }), 'InvalidParameterValue', 400, /AttributeName\.1/);
    await expectXmlError(await query({ Action: 'CreateQueue', QueueName: 'q', 'Attribute.1.Value': '5' }), 'MissingParameter', 400, /Attribute\.1\.Name/);
    await expectXmlError(await query({ Action: 'SendMessageBatch', QueueUrl }), 'AWS.SimpleQueueService.EmptyBatchRequest', 400);
    await expectXmlError(
      await query({ Action: 'SendMessageBatch', QueueUrl, 'SendMessageBatchRequestEntry.1.Id': 'a b', 'SendMessageBatchRequestEntry.1.MessageBody': 'x' }),
      'AWS.SimpleQueueService.InvalidBatchEntryId',
      400,
    );
    await expectXmlError(await query({ Action: 'DeleteMessage', QueueUrl, ReceiptHandle: 'bogus' }), 'ReceiptHandleIsInvalid', 404);
    await expectXmlError(await query({ Action: 'TagQueue', QueueUrl }), 'AWS.SimpleQueueService.UnsupportedOperation', 400);
    await expectXmlError(await query({ Action: 'SendMessage', QueueUrl, MessageBody: 'x'.repeat(64 * 1024 + 1) }), 'InvalidMessageContents', 400, /larger than/);
    // The server is still answering.
    assert.equal((await query({ Action: 'ListQueues' })).status, 200);
  });

  test('the Query encodings of maps, lists and batch entries, at the queue URL path, with escaped XML and matching MD5s', async () => {
    const created = await query({ Action: 'CreateQueue', QueueName: 'raw-q', 'Attribute.1.Name': 'VisibilityTimeout', 'Attribute.1.Value': '11', 'Attribute.2.Name': 'DelaySeconds', 'Attribute.2.Value': '0' });
    const createdXml = await created.text();
    assert.equal(created.status, 200, createdXml);
    assert.match(createdXml, /^<\?xml version="1.0"\?><CreateQueueResponse xmlns="http:\/\/queue.amazonaws.com\/doc\/2012-11-05\/"><CreateQueueResult><QueueUrl>/);
    const [url] = elements(createdXml, 'QueueUrl');
    assert.equal(url, `${berth.url}/000000000000/raw-q`);

    // Sent to the queue's own URL, with no QueueUrl parameter.
    const body = '<a href="x">&amp;</a>\r\n\'single\' é 😀';
    const sent = await query(
      {
        Action: 'SendMessage',
        MessageBody: body,
        'MessageAttribute.1.Name': 'kind',
        'MessageAttribute.1.Value.DataType': 'String',
        'MessageAttribute.1.Value.StringValue': 'a&b',
        'MessageAttribute.2.Name': 'raw',
        'MessageAttribute.2.Value.DataType': 'Binary',
        'MessageAttribute.2.Value.BinaryValue': Buffer.from([0, 255]).toString('base64'),
      },
      { path: '/000000000000/raw-q' },
    );
    const sentXml = await sent.text();
    assert.equal(sent.status, 200, sentXml);
    assert.deepEqual(elements(sentXml, 'MD5OfMessageBody'), [md5(body)]);
    assert.equal(elements(sentXml, 'MD5OfMessageAttributes').length, 1);

    const batch = await query({
      Action: 'SendMessageBatch',
      QueueUrl: url!,
      'SendMessageBatchRequestEntry.1.Id': 'one',
      'SendMessageBatchRequestEntry.1.MessageBody': 'first',
      'SendMessageBatchRequestEntry.2.Id': 'two',
      'SendMessageBatchRequestEntry.2.MessageBody': 'second',
      'SendMessageBatchRequestEntry.2.MessageAttribute.1.Name': 'n',
      'SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType': 'Number',
      'SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue': '2',
      'SendMessageBatchRequestEntry.3.Id': 'three',
      'SendMessageBatchRequestEntry.3.MessageBody': 'third',
      'SendMessageBatchRequestEntry.3.DelaySeconds': '901',
    });
    const batchXml = await batch.text();
    assert.equal(batch.status, 200, batchXml);
    assert.equal([...batchXml.matchAll(/<SendMessageBatchResultEntry>/g)].length, 2, batchXml);
    assert.deepEqual(elements(batchXml, 'MD5OfMessageBody'), [md5('first'), md5('second')]);
    assert.match(batchXml, /<BatchResultErrorEntry><Id>three<\/Id><SenderFault>true<\/SenderFault><Code>InvalidParameterValue<\/Code><Message>[^<]*DelaySeconds/);

    // A GET to the queue URL, with flattened lists.
    const received = await fetch(`${url}?Action=ReceiveMessage&Version=2012-11-05&MaxNumberOfMessages=10&AttributeName.1=ApproximateReceiveCount&MessageAttributeName.1=All`);
    const xml = await received.text();
    assert.equal(received.status, 200, xml);
    assert.ok(xml.includes('<Body>&lt;a href=&quot;x&quot;&gt;&amp;amp;&lt;/a&gt;&#xD;\n&apos;single&apos; é 😀</Body>'), xml);
    const bodies = elements(xml, 'Body');
    assert.deepEqual([...bodies].sort(), [body, 'first', 'second'].sort());
    assert.deepEqual(elements(xml, 'MD5OfBody'), bodies.map(md5));
    assert.match(xml, /<MessageAttribute><Name>kind<\/Name><Value><DataType>String<\/DataType><StringValue>a&amp;b<\/StringValue><\/Value><\/MessageAttribute>/);
    assert.match(xml, /<MessageAttribute><Name>raw<\/Name><Value><DataType>Binary<\/DataType><BinaryValue>AP8=<\/BinaryValue><\/Value><\/MessageAttribute>/);
    assert.match(xml, /<Attribute><Name>ApproximateReceiveCount<\/Name><Value>1<\/Value><\/Attribute>/);

    const handles = elements(xml, 'ReceiptHandle');
    const entries = Object.fromEntries(handles.flatMap((handle, i) => [[`DeleteMessageBatchRequestEntry.${i + 1}.Id`, `d${i}`], [`DeleteMessageBatchRequestEntry.${i + 1}.ReceiptHandle`, handle]]));
    const deleted = await query({ Action: 'DeleteMessageBatch', QueueUrl: url!, ...entries });
    const deletedXml = await deleted.text();
    assert.equal(deleted.status, 200, deletedXml);
    assert.equal([...deletedXml.matchAll(/<DeleteMessageBatchResultEntry><Id>d\d<\/Id><\/DeleteMessageBatchResultEntry>/g)].length, 3, deletedXml);

    // A void operation answers with ResponseMetadata only.
    const removed = await query({ Action: 'DeleteQueue', QueueUrl: url! });
    assert.match(await removed.text(), /^<\?xml version="1.0"\?><DeleteQueueResponse xmlns="[^"]+"><ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata><\/DeleteQueueResponse>$/);
  });

  test('parameters the JSON protocol ignores are ignored here too: names on Object.prototype, tags, system attributes, list values', async () => {
    const QueueUrl = `${berth.url}/000000000000/orders`;
    const calls: [string, Record<string, string>, Record<string, unknown>][] = [
      [
        'SendMessage',
        {
          QueueUrl,
          MessageBody: 'inherited names',
          'MessageAttribute.1.Name': 'kind',
          'MessageAttribute.1.Value.DataType': 'String',
          'MessageAttribute.1.Value.StringValue': 'a',
          'MessageAttribute.1.Value.valueOf.first': 'x',
          'constructor.first': 'x',
          '__proto__.x': 'x',
          hasOwnProperty: 'x',
          'toString.a.b': 'x',
        },
        {
          QueueUrl,
          MessageBody: 'inherited names',
          MessageAttributes: { kind: { DataType: 'String', StringValue: 'a', valueOf: { first: 'x' } } },
          constructor: { first: 'x' },
          ['__proto__']: { x: 'x' },
          hasOwnProperty: 'x',
          toString: { a: { b: 'x' } },
        },
      ],
      [
        'SendMessageBatch',
        {
          QueueUrl,
          'SendMessageBatchRequestEntry.1.Id': 'a',
          'SendMessageBatchRequestEntry.1.MessageBody': 'x',
          'SendMessageBatchRequestEntry.1.constructor.first': 'x',
          'SendMessageBatchRequestEntry.1.MessageAttribute.1.Name': 'kind',
          'SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType': 'String',
          'SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue': 'a',
          // The deepest name in SQS's model.
          'SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringListValue.1': 'x',
        },
        { QueueUrl, Entries: [{ Id: 'a', MessageBody: 'x', constructor: { first: 'x' }, MessageAttributes: { kind: { DataType: 'String', StringValue: 'a', StringListValues: ['x'] } } }] },
      ],
      [
        'SendMessage',
        {
          QueueUrl,
          MessageBody: 'ignored members',
          'MessageSystemAttribute.first.Value.DataType': 'String',
          'MessageAttribute.1.Name': 'kind',
          'MessageAttribute.1.Value.DataType': 'String',
          'MessageAttribute.1.Value.StringValue': 'a',
          'MessageAttribute.1.Value.StringListValue.first': 'x',
        },
        {
          QueueUrl,
          MessageBody: 'ignored members',
          MessageSystemAttributes: { first: { DataType: 'String' } },
          MessageAttributes: { kind: { DataType: 'String', StringValue: 'a', StringListValues: { first: 'x' } } },
        },
      ],
      ['CreateQueue', { QueueName: 'tagged', 'Tag.1.Value': 'no key' }, { QueueName: 'tagged', tags: ['no key'] }],
      ['GetQueueUrl', { QueueName: 'orders', QueueOwnerAWSAccountId: '000000000000' }, { QueueName: 'orders', QueueOwnerAWSAccountId: '000000000000' }],
      ['ReceiveMessage', { QueueUrl, ReceiveRequestAttemptId: 'attempt' }, { QueueUrl, ReceiveRequestAttemptId: 'attempt' }],
    ];
    for (const [operation, params, members] of calls) {
      const viaQuery = await query({ Action: operation, ...params });
      const xml = await viaQuery.text();
      assert.equal(viaQuery.status, 200, `${operation} over Query: ${xml}`);
      const viaJson = await json(operation, members);
      const answer = (await viaJson.json()) as Record<string, unknown>;
      assert.equal(viaJson.status, 200, `${operation} over JSON: ${JSON.stringify(answer)}`);
      if (operation === 'SendMessage') assert.deepEqual(elements(xml, 'MD5OfMessageAttributes'), [answer.MD5OfMessageAttributes].filter(Boolean));
      if (operation === 'SendMessageBatch') {
        assert.deepEqual(elements(xml, 'Code'), [], xml);
        assert.deepEqual(elements(xml, 'MD5OfMessageAttributes'), [(answer.Successful as Record<string, string>[])[0]!.MD5OfMessageAttributes]);
      }
    }
    await query({ Action: 'PurgeQueue', QueueUrl });
    await query({ Action: 'DeleteQueue', QueueUrl: `${berth.url}/000000000000/tagged` });
  });

  test('the largest real requests are served: 10 entries with 10 message attributes each, a message whose encoding is the worst case', async () => {
    const created = await query({ Action: 'CreateQueue', QueueName: 'big-requests' });
    const [QueueUrl] = elements(await created.text(), 'QueueUrl');
    const entries: Record<string, string> = {};
    for (let entry = 1; entry <= 10; entry++) {
      const at = `SendMessageBatchRequestEntry.${entry}`;
      Object.assign(entries, { [`${at}.Id`]: `e${entry}`, [`${at}.MessageBody`]: `message ${entry}`, [`${at}.DelaySeconds`]: '0' });
      for (let attribute = 1; attribute <= 10; attribute++) {
        Object.assign(entries, {
          [`${at}.MessageAttribute.${attribute}.Name`]: `attribute${attribute}`,
          [`${at}.MessageAttribute.${attribute}.Value.DataType`]: 'Number',
          [`${at}.MessageAttribute.${attribute}.Value.StringValue`]: String(attribute),
        });
      }
      Object.assign(entries, {
        [`${at}.MessageSystemAttribute.1.Name`]: 'AWSTraceHeader',
        [`${at}.MessageSystemAttribute.1.Value.DataType`]: 'String',
        [`${at}.MessageSystemAttribute.1.Value.StringValue`]: 'Root=1-5759e988-bd862e3fe1be46a994272793',
      });
    }
    const batch = await query({ Action: 'SendMessageBatch', QueueUrl: QueueUrl!, ...entries });
    const batchXml = await batch.text();
    assert.equal(batch.status, 200, batchXml);
    assert.equal(elements(batchXml, 'MD5OfMessageAttributes').length, 10, batchXml);
    assert.deepEqual(elements(batchXml, 'Code'), []);

    // Exactly events.maxPayload (64 KiB: body, name, type and value), all of it a binary value whose
    // base64 is '/' throughout: four bytes on the wire for each byte of the message.
    const binary = Buffer.alloc(64 * 1024 - 'x'.length - 'b'.length - 'Binary'.length, 0xff);
    const worst = { Action: 'SendMessage', QueueUrl: QueueUrl!, MessageBody: 'x', 'MessageAttribute.1.Name': 'b', 'MessageAttribute.1.Value.DataType': 'Binary', 'MessageAttribute.1.Value.BinaryValue': binary.toString('base64') };
    assert.ok(new URLSearchParams(worst).toString().length > 4 * 64 * 1024);
    const sent = await query(worst);
    assert.equal(sent.status, 200, await sent.text());
    // Larger than any valid request can be: refused before it is read, naming the limit.
    await expectXmlError(await query({ ...worst, MessageBody: 'x'.repeat(70 * 1024) }), 'InvalidMessageContents', 400, /larger than 327680 bytes/);
    await query({ Action: 'DeleteQueue', QueueUrl: QueueUrl! });
  });

  test('more than 1000 parameters are refused; up to 1000 are served, unknown names ignored', async () => {
    const junk = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`Junk${i}.${i}`, 'x']));
    // Action and Version are two of them.
    const served = await query({ Action: 'ListQueues', ...junk(998) });
    assert.equal(served.status, 200, await served.text());
    await expectXmlError(await query({ Action: 'ListQueues', ...junk(999) }), 'InvalidParameterValue', 400, /more than 1000 parameters/);
    await expectXmlError(await query({ Action: 'ListQueues', 'QueueNamePrefix.a.b.c.d.e.f.g.h': 'x' }), 'InvalidParameterValue', 400, /QueueNamePrefix\.… has more than 8 dot-separated parts/);
    // Under a name no operation reads, it is ignored like any unknown parameter.
    assert.equal((await query({ Action: 'ListQueues', 'Junk.a.b.c.d.e.f.g.h': 'x' })).status, 200);
  });

  test("requests that are not SQS calls still reach the user's routes", async () => {
    // Unsigned form posts, even with an Action in the body, are the user's.
    const form = await query({ Action: 'SendMessage', MessageBody: 'x' }, { signed: false });
    assert.equal(form.status, 200);
    assert.equal(await form.text(), 'user route got Version=2012-11-05&Action=SendMessage&MessageBody=x');
    const elsewhere = await query({ Action: 'ListQueues' }, { path: '/some/path', signed: false });
    assert.equal(elsewhere.status, 404);
    assert.match(await elsewhere.text(), /BERTH_ERR_ROUTE_NOT_FOUND/);
    // A query string naming no SQS action is not an SQS call either.
    const login = await fetch(`${berth.url}/?Action=Login`, { method: 'POST', body: 'hello' });
    assert.equal(await login.text(), 'user route got hello');
  });
});

describe('hostile Query requests', () => {
  // A larger events.maxPayload, so requests of many megabytes get past the body limit.
  let big: RunningBerth;
  before(async () => {
    big = await startBerth(makeProject({ 'berth.yml': BERTH_YML.replace('maxPayload: 64kb', 'maxPayload: 8mb'), 'root.mjs': ROOT }));
  });
  after(async () => {
    if (big) assert.equal(await big.stop(), 0);
  });

  /** Refused with the SQS XML error well within a second (decoding them took seconds), and the server still answers. */
  async function refusedQuickly(body: string, message: RegExp): Promise<void> {
    const started = performance.now();
    const response = await fetch(`${big.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...SIGNED }, body });
    await expectXmlError(response, 'InvalidParameterValue', 400, message);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1000, `answered in ${elapsed.toFixed(0)} ms`);
    const listed = await query({ Action: 'ListQueues' }, { to: big });
    assert.equal(listed.status, 200, await listed.text());
  }

  test('two million distinct parameters (21 MB) are refused at once', async () => {
    const body = ['Action=ListQueues&Version=2012-11-05', ...Array.from({ length: 2_000_000 }, (_, i) => `p${i}=1`)].join('&');
    await refusedQuickly(body, /more than 1000 parameters/);
  });

  test('one parameter name of five million parts is refused at once', async () => {
    await refusedQuickly(`Action=ListQueues&Version=2012-11-05&QueueNamePrefix.${'a.'.repeat(5_000_000)}z=1`, /QueueNamePrefix\.… has more than 8/);
  });
});
