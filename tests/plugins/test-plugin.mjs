#!/usr/bin/env node
// A Codex plugin for the host's tests: well behaved by default, misbehaving on request.
//
//   node test-plugin.mjs [SCENARIO] [ARG]
//
// Scenarios (one misbehaviour each):
//   well-behaved      answers everything correctly (the default)
//   out-of-order      answers `metadata/series/search` after `query` milliseconds
//   junk              writes junk lines (console.log noise, blank lines, half objects) around answers
//   giant-line        answers `metadata/series/search` with one 20 MiB line
//   dies-mid-request  exits with status 3 on `metadata/series/search`, without answering
//   never-answers     answers `initialize`, then nothing
//   silent-init       never answers `initialize`
//   refuses-init      answers `initialize` with error -32004 (its configuration is wrong)
//   storage-in-init   writes and reads storage while handling `initialize`, before answering
//   stderr-flood      writes 64 KiB of stderr per request, and 32 MiB at start
//   bad-manifest      returns the manifest with ARG (a JSON object) merged into it
//   ignores-shutdown  answers `shutdown` but stays alive, ignoring stdin EOF and SIGTERM
//   stuck             answers `initialize`, then nothing at all, ignoring stdin EOF and SIGTERM
//   grandchild        starts a long-lived grandchild process; search returns the marker on its
//                     command line (its pid may be a PID namespace's)
//   bad-result        answers `metadata/series/get` with a result of the wrong shape
//   bad-year          answers `metadata/series/get` with `year` a string, the rest well typed
//
// In every scenario `metadata/series/search` also runs storage commands given as its
// query, so tests can drive reverse RPC (see `runCommand` below); each result is one step:
// `externalId` names the step, `title` is the JSON of its answer or error.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const scenario = process.argv[2] ?? "well-behaved";
const scenarioArg = process.argv[3];

const manifest = {
  name: "test-plugin",
  displayName: "Test Plugin",
  version: "1.0.0",
  description: "Plugin used by the host's tests",
  author: "codex-plugin-host",
  protocolVersion: "1.0",
  capabilities: { metadataProvider: ["series"], userReadSync: true, externalIdSource: "api:test" },
};

const write = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const answer = (id, result) => write({ jsonrpc: "2.0", id, result });
const fail = (id, code, message) => write({ jsonrpc: "2.0", id, error: { code, message } });

// Reverse RPC: the plugin's own requests to the host, numbered from 1 like the SDK's.
let nextStorageId = 1;
const waiting = new Map();
function host(method, params) {
  const id = nextStorageId++;
  write({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
  return new Promise((resolve) => waiting.set(id, resolve));
}

// Storage commands, `;`-separated: set:KEY=JSON[@EXPIRES], get:KEY, delete:KEY, list,
// clear, fill:N (keys fill-0 … fill-N-1), race:A,B (two concurrent sets), big:BYTES,
// longkey:BYTES, env, release:METHOD (a releases/* request, with params for any of them).
async function runCommand(command) {
  const [verb, rest = ""] = command.split(/:(.*)/s);
  switch (verb) {
    case "set": {
      const [key, tail] = rest.split(/=(.*)/s);
      const [json, expiresAt] = tail.split("@");
      return host("storage/set", { key, data: JSON.parse(json), ...(expiresAt ? { expiresAt } : {}) });
    }
    case "get":
      return host("storage/get", { key: rest });
    case "delete":
      return host("storage/delete", { key: rest });
    case "list":
      return host("storage/list");
    case "clear":
      return host("storage/clear");
    case "fill": {
      const outcomes = [];
      for (let index = 0; index < Number(rest); index++) {
        outcomes.push(await host("storage/set", { key: `fill-${index}`, data: index }));
      }
      return outcomes.filter((outcome) => outcome.error).length === 0 ? { filled: Number(rest) } : outcomes;
    }
    case "race": {
      const keys = rest.split(",");
      return Promise.all(keys.map((key) => host("storage/set", { key, data: key })));
    }
    case "big":
      return host("storage/set", { key: "big", data: "x".repeat(Number(rest)) });
    case "longkey":
      return host("storage/set", { key: "k".repeat(Number(rest)), data: 1 });
    case "notstorage":
      return host("releases/list_tracked", { sourceId: "x" });
    case "release":
      return host(rest, { sourceId: "x", sources: [], current: 1, total: 2, candidate: {}, etag: "e" });
    case "env":
      return { env: process.env };
    default:
      return { error: { message: `unknown test command ${command}` } };
  }
}

async function search(params) {
  if (scenario === "dies-mid-request") process.exit(3);
  if (scenario === "giant-line") {
    return { results: [{ externalId: "giant", title: "x".repeat(20 * 1024 * 1024) }] };
  }
  if (scenario === "out-of-order") {
    await new Promise((resolve) => setTimeout(resolve, Number(params.query)));
    return { results: [{ externalId: params.query, title: `slept ${params.query} ms` }] };
  }
  if (scenario === "grandchild") {
    return { results: [{ externalId: "grandchild", title: grandchildMarker }] };
  }
  const results = [];
  for (const command of params.query.split(";").filter(Boolean)) {
    results.push({ externalId: command.slice(0, 40), title: JSON.stringify(await runCommand(command)) });
  }
  return { results };
}

async function handle(request) {
  const { id, method, params } = request;
  if (scenario === "stuck" && method !== "initialize") return;
  if (scenario === "stderr-flood") process.stderr.write(`[WARN] ${"flood ".repeat(10_000)}\n`.repeat(1));
  switch (method) {
    case "initialize":
      if (scenario === "silent-init") return;
      if (scenario === "refuses-init") return fail(id, -32004, "missing apiKey in adminConfig");
      if (scenario === "storage-in-init") {
        await host("storage/set", { key: "init", data: "written in initialize" });
        const read = await host("storage/get", { key: "init" });
        if (read.data !== "written in initialize") return fail(id, -32603, `storage read back ${JSON.stringify(read)}`);
      }
      if (scenario === "stuck") return answer(id, manifest);
      if (scenario === "bad-manifest") return answer(id, { ...manifest, ...JSON.parse(scenarioArg) });
      return answer(id, manifest);
    case "ping":
      if (scenario === "never-answers") return;
      return answer(id, "pong");
    case "shutdown":
      answer(id, null);
      if (scenario !== "ignores-shutdown") process.stdout.write("", () => process.exit(0));
      return;
    case "metadata/series/search":
      if (scenario === "never-answers") return;
      return answer(id, await search(params));
    case "metadata/series/get":
      if (scenario === "bad-result") return answer(id, { externalId: 42, title: ["not", "a", "string"] });
      if (scenario === "bad-year") {
        return answer(id, { externalId: params.externalId, title: "Monster", year: "MCMXCIV", summary: "A surgeon…" });
      }
      return answer(id, {
        externalId: params.externalId,
        externalUrl: `https://example.test/${params.externalId}`,
        title: "Test Series",
        totalVolumeCount: 3,
        totalChapterCount: 47.5,
        totalBookCount: 99,
        authors: ["A. Writer", { name: "B. Artist", role: "illustrator" }],
      });
    case "metadata/series/match":
      return answer(id, { match: { externalId: "m1", title: params.title, alternateTitles: [] }, confidence: 0.9 });
    case "sync/getUserInfo":
      return fail(id, -32003, "no access token");
    case "sync/pullProgress":
      return fail(id, -32001, "slow down");
    default:
      return fail(id, -32601, `Method not found: ${method}`);
  }
}

if (scenario === "ignores-shutdown" || scenario === "stuck") {
  process.on("SIGTERM", () => {});
  setInterval(() => {}, 1000);
}
const grandchildMarker = `codex-grandchild-${process.pid}-${Date.now()}`;
if (scenario === "grandchild") {
  spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", grandchildMarker], { stdio: "ignore" });
}
if (scenario === "stderr-flood") process.stderr.write(`${"[INFO] start-up noise ".repeat(64)}\n`.repeat(24_000));

const lines = createInterface({ input: process.stdin, terminal: false });
lines.on("line", (line) => {
  if (scenario === "junk") {
    console.log("junk: a stray console.log");
    process.stdout.write("\n{\"jsonrpc\":\"2.0\",\n");
  }
  let message;
  try {
    message = JSON.parse(line);
  } catch {
    return write({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } });
  }
  if (message.method === undefined && waiting.has(message.id)) {
    const resolve = waiting.get(message.id);
    waiting.delete(message.id);
    return resolve(message.error ? { error: message.error } : message.result);
  }
  void handle(message);
});
lines.on("close", () => {
  if (scenario !== "ignores-shutdown" && scenario !== "stuck") process.exit(0);
});
