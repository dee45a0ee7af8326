// The bench app on the official server (socket.io 4.8, default install): same events as fastsio_app.py.
//
//     node bench/apps/node_app.js PORT [HOST] [--count-disconnects]
//
// --count-disconnects: count the reasons of "disconnect" events and print them as one JSON line
// ({"disconnect_reasons": {...}}) when the server stops.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const countDisconnects = process.argv.includes("--count-disconnects");
const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const port = Number(positional[0] || 3000);
const host = positional[1] || "127.0.0.1";
const reasons = {};
const httpServer = http.createServer();
const io = new Server(httpServer);

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

httpServer.listen(port, host);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    if (countDisconnects) console.log(JSON.stringify({ disconnect_reasons: reasons }));
    process.exit(0);
  });
}
