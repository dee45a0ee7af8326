// A scriptable socket.io-client for fastsio's interop tests.
//
//   node client.mjs '<config json>'
//
// config: {
//   url, namespace = "/",          // the socket connects to url + namespace
//   opts: {...},                   // passed to io() (transports, auth, query, path, ...;
//                                  // parser: "msgpack" is socket.io-msgpack-parser)
//   acks: {event: [args] | "echo"},// how to answer server emits that ask for an ack
//   steps: [step, ...]             // run first; more steps come as JSON lines on stdin
// }
// step: {op: "emit", event, args, ack?: bool, timeout?: ms, ref?}
//       {op: "wait", event, count?: n}   // until n events of that name have arrived
//       {op: "connect"} | {op: "disconnect"} | {op: "status", ref?}
//       {op: "sleep", ms} | {op: "exit"}
//       {op: "drop", url?}             // kill the transport as a network failure would; with
//                                      // reconnection on, the client comes back (to url if given)
//
// Output: one JSON object per line on stdout, each with a "type":
//   ready, connect {id, transport}, upgrade {transport},
//   connect_error {message, data}, disconnect {reason, description},
//   event {event, args, ack: bool}, ack {ref, args}, ack_error {ref, message},
//   status {ref, id, connected, engineTransport}, done {ref}, error {message}.
// Binary values travel as {"$bin": base64, "$type": "Buffer" | "ArrayBuffer" | ...}; on input
// "$type": "ArrayBuffer" sends an ArrayBuffer, anything else a Buffer.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2] ?? "{}");

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function encode(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64"), $type: "Buffer" };
  if (value instanceof ArrayBuffer) {
    return { $bin: Buffer.from(value).toString("base64"), $type: "ArrayBuffer" };
  }
  if (ArrayBuffer.isView(value)) {
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bin: buf.toString("base64"), $type: value.constructor.name };
  }
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value === undefined ? null : value;
}

function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") {
      const buf = Buffer.from(value.$bin, "base64");
      if (value.$type === "ArrayBuffer") {
        return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      }
      return buf;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
  }
  return value;
}

const url = config.url + (config.namespace && config.namespace !== "/" ? config.namespace : "");
const opts = { ...(config.opts ?? {}) };
if (opts.parser === "msgpack") opts.parser = await import("socket.io-msgpack-parser");  // by name
const socket = io(url, { forceNew: true, reconnection: false, ...opts });
const engineTransport = () => socket.io.engine?.transport?.name ?? null;
const acks = config.acks ?? {};
const counts = new Map();
const waiters = [];

function checkWaiters() {
  for (let i = waiters.length - 1; i >= 0; i--) {
    const w = waiters[i];
    if ((counts.get(w.event) ?? 0) >= w.count) {
      waiters.splice(i, 1);
      w.resolve();
    }
  }
}

function seen(name) {
  counts.set(name, (counts.get(name) ?? 0) + 1);
  checkWaiters();
}

socket.io.on("open", () => {
  socket.io.engine.on("upgrade", (transport) => out({ type: "upgrade", transport: transport.name }));
});
socket.on("connect", () => {
  out({ type: "connect", id: socket.id, transport: engineTransport(), recovered: socket.recovered });
  seen("connect");
});
socket.on("connect_error", (err) => {
  out({ type: "connect_error", message: err.message, data: encode(err.data ?? null) });
  seen("connect_error");
});
socket.on("disconnect", (reason, description) => {
  // An Error (transport errors), or {description, context} (a close by the peer).
  const inner = description?.description;
  const desc = description instanceof Error ? description.message
    : (typeof inner === "string" ? inner : (inner?.message ?? null));
  out({ type: "disconnect", reason, description: desc });
  seen("disconnect");
});
socket.onAny((event, ...args) => {
  const last = args[args.length - 1];
  const hasAck = typeof last === "function";
  const data = hasAck ? args.slice(0, -1) : args;
  out({ type: "event", event, args: encode(data), ack: hasAck });
  if (hasAck && event in acks) {
    const reply = acks[event] === "echo" ? data : decode(acks[event]);
    last(...reply);
  }
  seen(event);
});

async function run(step) {
  switch (step.op) {
    case "emit": {
      const args = decode(step.args ?? []);
      if (!step.ack) {
        socket.emit(step.event, ...args);
        break;
      }
      const target = step.timeout ? socket.timeout(step.timeout) : socket;
      target.emit(step.event, ...args, (...res) => {
        if (step.timeout) {
          const err = res.shift();
          if (err) return out({ type: "ack_error", ref: step.ref ?? null, message: err.message });
        }
        out({ type: "ack", ref: step.ref ?? null, args: encode(res) });
      });
      break;
    }
    case "wait":
      await new Promise((resolve) => {
        waiters.push({ event: step.event, count: step.count ?? 1, resolve });
        checkWaiters();
      });
      break;
    case "connect":
      socket.connect();
      break;
    case "disconnect":
      socket.disconnect();
      break;
    case "status":
      out({ type: "status", ref: step.ref ?? null, id: socket.id ?? null, connected: socket.connected, engineTransport: engineTransport(), pid: socket._pid ?? null, offset: socket._lastOffset ?? null });
      break;
    case "drop":
      if (step.url) socket.io.uri = step.url;
      socket.io.engine.close();
      break;
    case "sleep":
      await new Promise((resolve) => setTimeout(resolve, step.ms ?? 0));
      break;
    case "exit":
      socket.disconnect();
      process.exit(0);
      break;
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
  if (step.ref !== undefined && step.op !== "emit" && step.op !== "status") {
    out({ type: "done", ref: step.ref });
  }
}

// Steps run one after another, whether they come from the config or from stdin.
let queue = Promise.resolve();
function enqueue(step) {
  queue = queue.then(() => run(step)).catch((err) => out({ type: "error", message: String(err?.stack ?? err) }));
}

for (const step of config.steps ?? []) enqueue(step);
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (line.trim()) enqueue(JSON.parse(line));
});
rl.on("close", () => enqueue({ op: "exit" }));
out({ type: "ready" });
