// Connection state recovery as the official client does it. Usage: node recovery.mjs URL DROP_AFTER
// Prints one JSON object per line: connect (id, recovered), tick (args), disconnect (reason).
// After DROP_AFTER "tick" events (0: right after the first connect) it kills its own transport
// once, as a network failure would, and lets the client reconnect by itself.
import { io } from "socket.io-client";

const [url, dropAfterArg] = process.argv.slice(2);
const dropAfter = Number(dropAfterArg);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const socket = io(url, { transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 50 });
let ticks = 0;
let dropped = false;

function drop() {
  dropped = true;
  socket.io.engine.close();
}

socket.on("connect", () => {
  out({ ev: "connect", id: socket.id, recovered: socket.recovered });
  if (!dropped && dropAfter === 0) setTimeout(drop, 10);
});
socket.on("disconnect", (reason) => out({ ev: "disconnect", reason }));
socket.on("tick", (...args) => {
  out({ ev: "tick", args });
  ticks += 1;
  if (!dropped && dropAfter > 0 && ticks === dropAfter) drop();
});
socket.on("done", () => {
  out({ ev: "done" });
  socket.disconnect();
  process.exit(0);
});
setTimeout(() => { out({ ev: "timeout" }); process.exit(1); }, 10000);
