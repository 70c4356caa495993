// A NodeServer-shaped Socket.IO server (as the original toolkit's / OpenVtuber's NodeServer):
// namespace /kizuna, event result_data, relayed to every other client of /kizuna as
// result_download (what the three.js avatar page listens for). Each payload received is printed
// as one JSON line on stdout.
// usage: node nodeserver.js PORT [v2|v3|v4] [--ping MS] [--websocket-only]
//   v2: socket.io 2.5.0 (Engine.IO 3), what the original toolkit's NodeServer pins
//   v3: socket.io 3.1 (Engine.IO 4), upstream OpenVtuber's NodeServer
//   v4: socket.io 4.8 (Engine.IO 4), the default
//   --ping MS: pingInterval and pingTimeout (default: the library's, 25 s and 5-20 s), short to
//              test the heartbeat, which goes client -> server in Engine.IO 3, the other way in 4
//   --websocket-only: no HTTP long-polling (transports: ["websocket"])
const http = require("http");

const port = parseInt(process.argv[2] || "6789", 10);
const version = process.argv[3] && !process.argv[3].startsWith("--") ? process.argv[3] : "v4";
const opts = {};
for (let i = 3; i < process.argv.length; i++) {
  if (process.argv[i] === "--ping") opts.pingInterval = opts.pingTimeout = parseInt(process.argv[++i], 10);
  else if (process.argv[i] === "--websocket-only") opts.transports = ["websocket"];
}
const pkg = { v2: "socket-io-v2", v3: "socket-io-v3", v4: "socket.io" }[version];
if (!pkg) { console.error(`unknown version ${version}: v2, v3 or v4`); process.exit(1); }
const mod = require(pkg);
const path = require("path");
const installed = JSON.parse(require("fs").readFileSync(
  path.join(__dirname, "node_modules", pkg, "package.json"), "utf8")).version;
const shown = { ...opts };  // socket.io 2 adds its own keys to opts
const httpServer = http.createServer();
// socket.io 2's export is the Server function itself (no cors option: it allows any origin)
const io = version === "v2" ? mod(httpServer, opts) : new mod.Server(httpServer, { cors: { origin: "*" }, ...opts });
const kizuna = io.of("/kizuna");
kizuna.on("connection", (socket) => {
  console.log(JSON.stringify({ connection: socket.id }));
  socket.on("result_data", (data) => {
    console.log(JSON.stringify({ result_data: data }));
    socket.broadcast.emit("result_download", data);  // what the NodeServer does: relay to the page
  });
  socket.on("disconnect", (reason) => console.log(JSON.stringify({ disconnect: socket.id, reason })));
});
httpServer.listen(port, "127.0.0.1", () => console.log(JSON.stringify({
  listening: port, version, socketio: installed, ...shown })));
const stop = () => { io.close(); process.exit(0); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
