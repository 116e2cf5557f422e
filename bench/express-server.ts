// The baseline a team would write themselves: the official @line/bot-sdk `middleware()` on Express (it reads
// the body, checks x-line-signature and parses the JSON), then 200 — nothing stored.
// usage: node bench/express-server.ts <port> <channelSecret>
import { middleware } from "@line/bot-sdk";
import express from "express";

const port = Number(process.argv[2] ?? 0);
const channelSecret = process.argv[3] ?? "";

const app = express();
app.get("/healthz", (_req, res) => {
  res.json({ code: "0" });
});
app.post("/line/webhook/:senderKey", middleware({ channelSecret }), (_req, res) => {
  res.json({ code: "0" });
});

const server = app.listen(port, "127.0.0.1", () => console.log(`express:ready ${port}`));
const stop = () => server.close(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
