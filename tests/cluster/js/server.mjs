// An official Socket.IO 4.8 server on @socket.io/redis-streams-adapter 0.3.1, driven by the
// mixed-cluster tests (one fastsio node and this one on the same Redis).
//
//   node server.mjs '<config json>'
//
// config: {redisUrl, port = 0, recovery?: {maxDisconnectionDuration (ms)} | null,
//          namespaces = ["/"], serverSide = [event names listened to on each namespace],
//          adapter = {...options of createAdapter}}
//
// Each socket joins the rooms in its auth.rooms, gets socket.data = {node: "node"}, and answers
// the events "join" (room) / "leave" (room) / "whoami" with an ack. Each server-side event named
// in serverSide is reported, and answered {node: "node", args} when it wants an ack.
//
// Steps come as JSON lines on stdin: {op, ref, nsp = "/", rooms = [], except = [], ...}
//   emit {event, args, volatile?, local?}        emitWithAck {event, args, timeout}
//   fetchSockets                                  socketsJoin / socketsLeave {target}
//   disconnectSockets {close}                     serverSideEmit {event, args}
//   serverSideEmitWithAck {event, args, timeout?} serverCount
//   remote {id, action: "emit"|"join"|"leave"|"disconnect", event?, args?, target?}
// Output lines: ready {port}, connection {nsp, id, recovered, rooms}, disconnect {nsp, id, reason},
//   serverside {nsp, event, args}, event {nsp, id, event, args}, result {ref, ...}, error {ref, message}.
// Binary values travel as {"$bin": base64} (a Buffer on this side).

import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { createClient } from "redis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const config = JSON.parse(process.argv[2] ?? "{}");
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function encode(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64"), $type: "Buffer" };
  if (value instanceof ArrayBuffer) {
    return { $bin: Buffer.from(value).toString("base64"), $type: "ArrayBuffer" };
  }
  if (ArrayBuffer.isView(value)) {
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bin: buf.toString("base64"), $type: value.constructor.name };
  }
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(encode);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value === undefined ? null : value;
}

function decode(value) {
  if (Array.isArray(value)) return value.map(decode);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
  }
  return value;
}

const redisClient = createClient({ url: config.redisUrl });
redisClient.on("error", (err) => process.stderr.write(`redis: ${err.message}\n`));
await redisClient.connect();

const httpServer = createServer();
const io = new Server(httpServer, {
  adapter: createAdapter(redisClient, config.adapter ?? {}),
  connectionStateRecovery: config.recovery ?? undefined,
  pingInterval: 2000,
  pingTimeout: 2000,
});

for (const name of config.namespaces ?? ["/"]) {
  const nsp = io.of(name);
  nsp.on("connection", (socket) => {
    socket.data = socket.recovered ? socket.data : { node: "node" };
    for (const room of socket.handshake.auth?.rooms ?? []) socket.join(room);
    out({ type: "connection", nsp: name, id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms] });
    socket.on("join", (room, cb) => { socket.join(room); cb?.("ok"); });
    socket.on("leave", (room, cb) => { socket.leave(room); cb?.("ok"); });
    socket.on("whoami", (cb) => cb?.({ node: "node", id: socket.id }));
    socket.onAny((event, ...args) => {
      if (typeof args[args.length - 1] === "function") args.pop();
      out({ type: "event", nsp: name, id: socket.id, event, args: encode(args) });
    });
    socket.on("disconnect", (reason) => out({ type: "disconnect", nsp: name, id: socket.id, reason }));
  });
  for (const event of config.serverSide ?? []) {
    nsp.on(event, (...args) => {
      const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
      out({ type: "serverside", nsp: name, event, args: encode(args) });
      if (cb) cb({ node: "node", args });
    });
  }
}

function operator(step) {
  let op = io.of(step.nsp ?? "/");
  if (step.rooms?.length) op = op.to(step.rooms);
  if (step.except?.length) op = op.except(step.except);
  if (step.volatile) op = op.volatile;
  if (step.local) op = op.local;
  if (step.timeout !== undefined) op = op.timeout(step.timeout);
  return op;
}

function describe(s) {
  return { id: s.id, rooms: [...s.rooms], data: encode(s.data), auth: encode(s.handshake.auth ?? null), address: s.handshake.address ?? null, issued: s.handshake.issued ?? null };
}

async function run(step) {
  const ref = step.ref ?? null;
  switch (step.op) {
    case "emit":
      operator(step).emit(step.event, ...decode(step.args ?? []));
      return out({ type: "result", ref });
    case "emitWithAck": {
      try {
        const responses = await operator(step).emitWithAck(step.event, ...decode(step.args ?? []));
        return out({ type: "result", ref, responses: encode(responses) });
      } catch (err) {
        return out({ type: "result", ref, error: err.message, responses: encode(err.responses ?? null) });
      }
    }
    case "fetchSockets": {
      try {
        const sockets = await operator(step).fetchSockets();
        return out({ type: "result", ref, sockets: sockets.map(describe) });
      } catch (err) {
        return out({ type: "result", ref, error: err.message });
      }
    }
    case "socketsJoin":
      operator(step).socketsJoin(step.target);
      return out({ type: "result", ref });
    case "socketsLeave":
      operator(step).socketsLeave(step.target);
      return out({ type: "result", ref });
    case "disconnectSockets":
      operator(step).disconnectSockets(step.close ?? false);
      return out({ type: "result", ref });
    case "serverSideEmit":
      io.of(step.nsp ?? "/").serverSideEmit(step.event, ...decode(step.args ?? []));
      return out({ type: "result", ref });
    case "serverSideEmitWithAck": {
      try {
        const responses = await io.of(step.nsp ?? "/").serverSideEmitWithAck(step.event, ...decode(step.args ?? []));
        return out({ type: "result", ref, responses: encode(responses) });
      } catch (err) {
        return out({ type: "result", ref, error: err.message, responses: encode(err.responses ?? null) });
      }
    }
    case "serverCount":
      return out({ type: "result", ref, count: await io.of(step.nsp ?? "/").adapter.serverCount() });
    case "remote": {
      const sockets = await io.of(step.nsp ?? "/").fetchSockets();
      const s = sockets.find((x) => x.id === step.id);
      if (!s) return out({ type: "result", ref, found: false });
      if (step.action === "emit") s.emit(step.event, ...decode(step.args ?? []));
      else if (step.action === "join") s.join(step.target);
      else if (step.action === "leave") s.leave(step.target);
      else if (step.action === "disconnect") s.disconnect(step.close ?? false);
      return out({ type: "result", ref, found: true, socket: describe(s) });
    }
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}`);
  }
}

let queue = Promise.resolve();
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const step = JSON.parse(line);
  queue = queue.then(() => run(step)).catch((err) => out({ type: "error", ref: step.ref ?? null, message: String(err?.stack ?? err) }));
});
rl.on("close", async () => {
  io.close();
  try { await redisClient.quit(); } catch { /* already gone */ }
  process.exit(0);
});

httpServer.listen(config.port ?? 0, "127.0.0.1", () => {
  out({ type: "ready", port: httpServer.address().port });
});
