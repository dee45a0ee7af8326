// Many idle socket.io-client sockets in one Node process, opened over time, that only keep
// their connection alive; reports when each one got its pings.
//
//   node idle_many.mjs '{"url", "count", "spreadMs", "observeMs", "opts": {...}}'
//
// Socket i connects at i * spreadMs / count (default options but no reconnection, plus
// opts); all are observed until observeMs after the last one started. Output, one JSON line:
//   {clients: [{connected: bool, gaps: [ms, ...], disconnects: [reason, ...]}, ...]}
// where gaps[0] is the time from the Engine.IO open to the first ping, and each later gap
// the time from a ping to the next (the client answers each ping at once).

import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2] ?? "{}");
const count = config.count ?? 10;
const spreadMs = config.spreadMs ?? 1000;
const observeMs = config.observeMs ?? 1000;
const clients = [];

function start(i) {
  const record = { connected: false, gaps: [], disconnects: [] };
  clients.push(record);
  const socket = io(config.url, { forceNew: true, reconnection: false, ...(config.opts ?? {}) });
  let last = null;
  socket.io.on("open", () => {
    last = performance.now();
    socket.io.engine.on("ping", () => {
      const now = performance.now();
      record.gaps.push(now - last);
      last = now;
    });
  });
  socket.on("connect", () => { record.connected = true; });
  socket.on("disconnect", (reason) => record.disconnects.push(reason));
  record.socket = socket;
}

for (let i = 0; i < count; i++) setTimeout(() => start(i), (i * spreadMs) / count);
setTimeout(() => {
  // Copies: disconnect() below records "io client disconnect" in the live arrays.
  const out = clients.map(({ connected, gaps, disconnects }) => ({
    connected, gaps: [...gaps], disconnects: [...disconnects],
  }));
  for (const { socket } of clients) socket.disconnect();
  process.stdout.write(JSON.stringify({ clients: out }) + "\n", () => process.exit(0));
}, spreadMs + observeMs);
