// A NodeServer-shaped Socket.IO server (as DeepVTB/OpenVtuber's NodeServer): namespace /kizuna,
// event result_data. Each payload received is printed as one JSON line on stdout.
// usage: node nodeserver.js PORT
const http = require("http");
const { Server } = require("socket.io");

const port = parseInt(process.argv[2] || "6789", 10);
const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });
const kizuna = io.of("/kizuna");
kizuna.on("connection", (socket) => {
  console.log(JSON.stringify({ connection: socket.id }));
  socket.on("result_data", (data) => {
    console.log(JSON.stringify({ result_data: data }));
    socket.broadcast.emit("result_download", data);  // what the NodeServer does: relay to the page
  });
  socket.on("disconnect", (reason) => console.log(JSON.stringify({ disconnect: socket.id, reason })));
});
httpServer.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ listening: port })));
const stop = () => { io.close(); process.exit(0); };
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
