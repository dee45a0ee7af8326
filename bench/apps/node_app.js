// The bench app on the official server (socket.io 4.8, default install): same events as fastsio_app.py.
//
//     node bench/apps/node_app.js PORT [HOST]
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);
const host = process.argv[3] || "127.0.0.1";
const httpServer = http.createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("bcast", (p, ack) => {
    io.emit("tick", p);
    ack(true);
  });
  socket.on("echo", (...args) => args.pop()(...args));
});

httpServer.listen(port, host);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
