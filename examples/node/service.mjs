// A Node.js service using kafka-sidecar: no Kafka library, only Node's http module and fetch.
//
//   node service.mjs backend --port 8080
//       the reactive consumer's backend: POST /kafka/records gets batches and answers a status per
//       record (DEADLETTER for a value with "fail": true, else SUCCESS); GET /health; GET /records
//   node service.mjs produce --sidecar http://127.0.0.1:8442 --topic orders '{"key":"o1","value":{...},"headers":{...}}' ...
//       POST /producers/{topic}; prints the sidecar's reply (partition and offset of each record)
//   node service.mjs consume --sidecar http://127.0.0.1:8442 --topic orders --group g --count 2
//       the active-consumer loop (REST Proxy v2): create an instance, subscribe, poll until --count
//       records arrived (--count 0: until Ctrl-C), commit them, delete the instance; prints each record as a JSON line
import http from "node:http";
import {parseArgs} from "node:util";

const V2 = "application/vnd.kafka.v2+json";

function backend(port) {
  const received = [];
  const server = http.createServer(async (req, res) => {
    const reply = (status, body) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {"content-type": "application/json", "content-length": Buffer.byteLength(text)});
      res.end(text);
    };
    if (req.method === "GET" && req.url === "/health") return reply(200, {status: "UP"});
    if (req.method === "GET" && req.url === "/records") return reply(200, {records: received});
    if (req.method !== "POST" || req.url !== "/kafka/records") return reply(404, {detail: "no such route"});
    let raw = "";
    for await (const chunk of req) raw += chunk;
    let batch;
    try {
      batch = JSON.parse(raw);
    } catch {
      return reply(400, {detail: "the body is not valid JSON", field: "body"});
    }
    // One status per record, matched by partition and offset.
    const statuses = batch.records.map((record) => {
      received.push({consumer: batch.consumer, ...record});
      const fail = record.value !== null && typeof record.value === "object" && record.value.fail === true;
      return {
        topic: record.topic, partition: record.partition, offset: record.offset,
        status: fail ? "DEADLETTER" : "SUCCESS", error: fail ? "the order asked to fail" : undefined,
      };
    });
    console.log(`batch from ${batch.consumer}: ${statuses.map((s) => `${s.partition}@${s.offset} ${s.status}`).join(", ")}`);
    return reply(200, {statuses});
  });
  server.listen(port, "127.0.0.1", () => console.log(`backend listening on http://127.0.0.1:${server.address().port}`));
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function call(method, url, body, accept) {
  const response = await fetch(url, {
    method,
    headers: {"content-type": V2, accept: accept || V2},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function produce(sidecar, topic, records) {
  const response = await fetch(`${sidecar}/producers/${encodeURIComponent(topic)}`, {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({records}),
  });
  const reply = await response.json();
  // 200: every record acknowledged by the broker; 207: some were not; 4xx: nothing was sent.
  if (response.status !== 200) throw new Error(`produce: HTTP ${response.status} ${JSON.stringify(reply)}`);
  console.log(JSON.stringify(reply));
}

async function consume(sidecar, topic, group, count, timeoutMs) {
  const created = await call("POST", `${sidecar}/consumers/${encodeURIComponent(group)}`,
    {name: "node-example", format: "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"});
  const base = created.base_uri;
  try {
    await call("POST", `${base}/subscription`, {topics: [topic]});
    const seen = [];
    const deadline = Date.now() + timeoutMs;
    let stopping = false;
    process.once("SIGINT", () => { stopping = true; });
    process.once("SIGTERM", () => { stopping = true; });
    while (!stopping && (count === 0 || seen.length < count)) {
      if (count > 0 && Date.now() > deadline) throw new Error(`only ${seen.length} of ${count} records within ${timeoutMs} ms`);
      const records = await call("GET", `${base}/records?timeout=1000`, undefined, "application/vnd.kafka.json.v2+json");
      for (const record of records) {
        console.log(JSON.stringify(record));
        seen.push(record);
      }
      if (records.length) {
        // Commit what was processed: the next offset of each record's partition.
        const offsets = records.map((r) => ({topic: r.topic, partition: r.partition, offset: r.offset + 1}));
        await call("POST", `${base}/offsets`, {offsets});
      }
    }
  } finally {
    await call("DELETE", base);
  }
}

const [command, ...rest] = process.argv.slice(2);
const {values, positionals} = parseArgs({
  args: rest,
  allowPositionals: true,
  options: {
    port: {type: "string", default: "8080"},
    sidecar: {type: "string", default: "http://127.0.0.1:8442"},
    topic: {type: "string", default: "orders"},
    group: {type: "string", default: "node-example"},
    count: {type: "string", default: "1"},
    "timeout-ms": {type: "string", default: "30000"},
  },
});

try {
  if (command === "backend") backend(Number(values.port));
  else if (command === "produce") await produce(values.sidecar, values.topic, positionals.map((p) => JSON.parse(p)));
  else if (command === "consume") {
    await consume(values.sidecar, values.topic, values.group, Number(values.count), Number(values["timeout-ms"]));
  } else {
    console.error("usage: node service.mjs backend|produce|consume [options] (see the top of this file)");
    process.exit(2);
  }
} catch (error) {
  console.error(`error: ${error.message}`);
  process.exit(1);
}
