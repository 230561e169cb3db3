#!/usr/bin/env node
// A hostile Codex plugin for the sandbox's tests: it answers like a plugin, and on
// `metadata/series/search` it attacks the host as the query (JSON) asks, reporting each
// attempt as one result: `externalId` names it, `title` is `{"reached": bool, "detail": "…"}`.
//
//   {"read": [PATH, …]}      read each file (the host's database, key file, another
//                            plugin's data); `detail` is its size, or the error
//   {"scanProc": [TERCES, …]} read every /proc/<pid>/environ and cmdline it can, and report
//                            the pids where one of the secrets shows (`reached` when any does);
//                            each secret is given reversed, so the query itself, on the test's
//                            command line, does not show it
//   {"detach": true}         leave a `setsid` child behind (a shell sleeping 600 s); `detail`
//                            is the marker on its command line (pids differ in a namespace)
//   {"signal": PID}          send SIGTERM to PID (the host)
//   {"chain": N}             leave behind a chain of N shells, each started by the one before
//                            in a session of its own, each then sleeping; `detail` is the
//                            marker every one of them carries on its command line
//   {"self": true}           its uid and effective capabilities (from /proc/self/status),
//                            and where its open descriptors point
//
// With `connect: "HOST:PORT"` in its admin config, every search (whatever its query) only
// tries a TCP connection there, reported as `connect HOST:PORT`: `reached` when it was
// accepted, the error otherwise.

import { spawn } from "node:child_process";
import { chmodSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { createInterface } from "node:readline";

const write = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const report = (name, reached, detail) => ({ externalId: name, title: JSON.stringify({ reached, detail: String(detail) }) });

function read(path) {
  try {
    return report(`read ${path}`, true, `${readFileSync(path).length} bytes`);
  } catch (error) {
    return report(`read ${path}`, false, error.code ?? error.message);
  }
}

function scanProc(secrets) {
  const found = [];
  let readable = 0;
  let entries = [];
  try {
    entries = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch (error) {
    return report("scan /proc", false, `cannot list /proc: ${error.code}`);
  }
  for (const pid of entries) {
    if (Number(pid) === process.pid) continue;
    for (const file of ["environ", "cmdline"]) {
      try {
        const text = readFileSync(`/proc/${pid}/${file}`, "latin1");
        readable += 1;
        secrets.filter((secret) => text.includes(secret)).forEach((_, index) => found.push(`${pid} ${file} shows secret ${index}`));
      } catch {
        // refused: what the sandbox is for
      }
    }
  }
  return report("scan /proc", found.length > 0, found.length > 0 ? found.join("; ") : `${readable} files readable, no secret`);
}

function detach() {
  const marker = `codex-detached-${process.pid}-${Date.now()}`;
  spawn("setsid", ["sh", "-c", `sleep 600; : ${marker}`], { detached: true, stdio: "ignore" }).unref();
  return report("detach", true, marker);
}

function chain(depth) {
  const marker = `codex-chain-${process.pid}`;
  const script = `${process.env.TMPDIR}/${marker}.sh`;
  writeFileSync(script, '#!/bin/sh\n[ "$1" -gt 0 ] && setsid "$0" $(($1 - 1)) &\nexec sleep 600\n');
  chmodSync(script, 0o755);
  spawn("setsid", [script, String(depth)], { detached: true, stdio: "ignore" }).unref();
  return report("chain", true, marker);
}

function signal(pid) {
  try {
    process.kill(pid, "SIGTERM");
    return report(`signal ${pid}`, true, "sent");
  } catch (error) {
    return report(`signal ${pid}`, false, error.code ?? error.message);
  }
}

function self() {
  try {
    const status = readFileSync("/proc/self/status", "latin1");
    const field = (name) => status.split("\n").find((line) => line.startsWith(`${name}:`))?.split(/\s+/)[1];
    const descriptors = readdirSync("/proc/self/fd").map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return "?";
      }
    });
    return report("self", true, JSON.stringify({ uid: field("Uid"), capEff: field("CapEff"), descriptors }));
  } catch (error) {
    return report("self", false, error.code ?? error.message);
  }
}

function connect(target) {
  const [host, port] = target.split(":");
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port: Number(port), timeout: 2000 });
    const done = (reached, detail) => {
      socket.destroy();
      resolve(report(`connect ${target}`, reached, detail));
    };
    socket.on("connect", () => done(true, "connected"));
    socket.on("timeout", () => done(false, "timed out"));
    socket.on("error", (error) => done(false, error.code ?? error.message));
  });
}

function attack(query) {
  const asked = JSON.parse(query);
  const results = (asked.read ?? []).map(read);
  if (asked.scanProc) results.push(scanProc(asked.scanProc.map((secret) => [...secret].reverse().join(""))));
  if (asked.detach) results.push(detach());
  if (asked.signal) results.push(signal(asked.signal));
  if (asked.self) results.push(self());
  if (asked.chain) results.push(chain(asked.chain));
  return { results };
}

const manifest = {
  name: "hostile",
  displayName: "Hostile",
  version: "1.0.0",
  description: "Attacks the host it runs in",
  author: "codex-plugin-host",
  protocolVersion: "1.0",
  capabilities: { metadataProvider: ["series"] },
};

let adminConfig = {};
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const message = JSON.parse(line);
  if (message.id === undefined) return;
  switch (message.method) {
    case "initialize":
      adminConfig = message.params?.adminConfig ?? {};
      return write({ jsonrpc: "2.0", id: message.id, result: manifest });
    case "ping":
      return write({ jsonrpc: "2.0", id: message.id, result: "pong" });
    case "shutdown":
      write({ jsonrpc: "2.0", id: message.id, result: null });
      return process.exit(0);
    case "metadata/series/search":
      if (adminConfig.connect) {
        return connect(adminConfig.connect).then((result) => write({ jsonrpc: "2.0", id: message.id, result: { results: [result] } }));
      }
      return write({ jsonrpc: "2.0", id: message.id, result: attack(message.params.query) });
    default:
      return write({ jsonrpc: "2.0", id: message.id, error: { code: -32601, message: "Method not found" } });
  }
});
lines.on("close", () => process.exit(0));
