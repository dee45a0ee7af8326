// The bench app on the official server (socket.io 4.8, default install): same events as fastsio_app.py.
//
//     node bench/apps/node_app.js PORT [HOST] [--count-disconnects]
//
// --redis URL: @socket.io/redis-streams-adapter on that Redis (node-redis client), for the
// cluster bench (bench/cluster.py).
//
// --count-disconnects: count the reasons of "disconnect" events and print them as one JSON line
// ({"disconnect_reasons": {...}}) when the server stops.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const countDisconnects = process.argv.includes("--count-disconnects");
const argv = process.argv.slice(2);
const redisAt = argv.indexOf("--redis");
const redisUrl = redisAt >= 0 ? argv.splice(redisAt, 2)[1] : null;
const positional = argv.filter((a) => !a.startsWith("--"));
const port = Number(positional[0] || 3000);
const host = positional[1] || "127.0.0.1";
const reasons = {};
const httpServer = http.createServer();
const io = new Server(httpServer);
let ready = Promise.resolve();
if (redisUrl) {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-streams-adapter");
  const client = createClient({ url: redisUrl });
  client.on("error", (err) => console.error("redis:", err.message));
  ready = client.connect().then(() => io.adapter(createAdapter(client)));
}

io.on("connection", (socket) => {
  socket.on("bcast", (p, ack) => {
    io.emit("tick", p);
    ack(true);
  });
  socket.on("bcastbin", (p, ack) => {
    io.emit("tick", { t: p.t, pad: Buffer.from(p.pad) });
    ack(true);
  });
  socket.on("echo", (...args) => args.pop()(...args));
  if (countDisconnects) {
    socket.on("disconnect", (reason) => {
      reasons[reason] = (reasons[reason] || 0) + 1;
    });
  }
});

ready.then(() => httpServer.listen(port, host));
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    if (countDisconnects) console.log(JSON.stringify({ disconnect_reasons: reasons }));
    process.exit(0);
  });
}
