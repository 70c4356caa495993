// A socket.io-client that connects to vtb's built-in avatar server and prints what it receives.
// usage: node client.js URL N [--token T] [--query-token T] [--emit EVENT JSON] [--emit-big EVENT KB]
//                              [--namespace NS] [--event EVENT]
// Prints JSON lines: {"connected": id}, {"connect_error": msg}, {EVENT_NAME: payload} for every
// event the server emits (result_data, result_download, ...), {"disconnect": reason}; exits 0
// after N payloads of --event (default result_data), 2 on connect_error, 3 on timeout, 4 when the
// server disconnects it first.
const { io } = require("socket.io-client");

const args = process.argv.slice(2);
const url = args[0].replace(/\/+$/, "");
const n = parseInt(args[1] || "5", 10);
let token = null, queryToken = null, ns = "/kizuna", emits = [], timeoutMs = 15000, counted = "result_data";
for (let i = 2; i < args.length; i++) {
  if (args[i] === "--token") token = args[++i];
  else if (args[i] === "--query-token") queryToken = args[++i];
  else if (args[i] === "--namespace") ns = args[++i];
  else if (args[i] === "--emit") { emits.push([args[i + 1], JSON.parse(args[i + 2])]); i += 2; }
  else if (args[i] === "--emit-big") { emits.push([args[i + 1], "x".repeat(1024 * parseInt(args[i + 2], 10))]); i += 2; }
  else if (args[i] === "--timeout") timeoutMs = parseInt(args[++i], 10);
  else if (args[i] === "--event") counted = args[++i];
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const socket = io(url + ns, { transports: ["websocket"], reconnection: false,
                              auth: token === null ? {} : { token },
                              query: queryToken === null ? {} : { token: queryToken } });
let got = 0;
socket.on("connect", () => {
  out({ connected: socket.id });
  for (const [ev, data] of emits) socket.emit(ev, data);
});
socket.on("connect_error", (err) => { out({ connect_error: String(err && err.message) }); process.exit(2); });
socket.on("disconnect", (reason) => { out({ disconnect: reason }); if (got < n) process.exit(4); });
socket.onAny((event, data) => {
  out({ [event]: data });
  if (event === counted && ++got >= n) { socket.close(); process.exit(0); }
});
setTimeout(() => { out({ timeout: got }); process.exit(3); }, timeoutMs);
