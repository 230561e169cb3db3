// The Node twin of guest-examples/wire-echo: it appends every line it receives, byte for
// byte, to `requests.jsonl` in its data directory (`dataDir` of `initialize`), and answers
// each method with the JSON its admin config holds under `answers.<method>` (-32601 for a
// method it has no answer for). Its admin config's `capabilities`, if any, are merged into
// its manifest's, and its `manifest` (an `oauth` block) into the manifest itself;
// `delays.<method>` (milliseconds) holds that method's answer back. Tests
// compare what a caller sent with what arrived, and what the plugin wrote with what the
// caller got back.

import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const manifest = {
  name: "wire-recorder",
  displayName: "Wire Recorder",
  version: "1.0.0",
  description: "Records requests as they arrive and answers from its config",
  protocolVersion: "1.0",
  capabilities: {
    metadataProvider: ["series", "book"],
    userReadSync: true,
    userRecommendationProvider: true,
    externalIdSource: "api:wire-recorder",
    releaseSource: { kinds: ["rss-uploader"], requiresAliases: true },
  },
};

const write = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
let answers = {};
let delays = {};
let record = null;

createInterface({ input: process.stdin }).on("line", (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  const { id, method, params } = request;
  if (method === "initialize") {
    answers = params?.adminConfig?.answers ?? {};
    delays = params?.adminConfig?.delays ?? {};
    Object.assign(manifest.capabilities, params?.adminConfig?.capabilities ?? {});
    Object.assign(manifest, params?.adminConfig?.manifest ?? {});
    record = params?.dataDir ? join(params.dataDir, "requests.jsonl") : null;
  }
  if (record) appendFileSync(record, `${line}\n`);
  if (id === undefined) return;
  if (method === "initialize") return write({ jsonrpc: "2.0", id, result: manifest });
  if (method === "shutdown") {
    write({ jsonrpc: "2.0", id, result: null });
    return process.exit(0);
  }
  if (Object.hasOwn(answers, method)) {
    const answer = () => write({ jsonrpc: "2.0", id, result: answers[method] });
    return Object.hasOwn(delays, method) ? setTimeout(answer, delays[method]) : answer();
  }
  write({ jsonrpc: "2.0", id, error: { code: -32601, message: `Method not found: ${method}` } });
});
