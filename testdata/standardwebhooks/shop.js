// A shop's Standard Webhooks endpoint for webhooks_test.go: every delivery is verified by the
// official npm package standardwebhooks, never by the module's own code.
//
//   SECRET=whsec_… FAIL_FIRST=2 node shop.js    prints the port it listens on, on 127.0.0.1
//
//   POST /cinetpay/standard-webhook   verified; 401 if the library refuses it; the first
//                                     FAIL_FIRST verified attempts answer 500
//   GET  /log                         every attempt: id, timestamp, verified or the error, status
"use strict";
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const wh = new Webhook(process.env.SECRET);
let failFirst = Number(process.env.FAIL_FIRST || 0);
const log = [];

http
  .createServer((req, res) => {
    if (req.method === "GET" && req.url === "/log") {
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(log));
      return;
    }
    if (req.method !== "POST" || req.url !== "/cinetpay/standard-webhook") {
      res.statusCode = 404;
      res.end();
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const entry = {
        id: req.headers["webhook-id"] || "",
        timestamp: req.headers["webhook-timestamp"] || "",
        signature: req.headers["webhook-signature"] || "",
        content_type: req.headers["content-type"] || "",
        cinetpay_headers: Object.keys(req.headers).filter((k) => k.startsWith("cinetpay-")),
        body,
      };
      try {
        entry.event = wh.verify(body, req.headers);
        entry.status = failFirst > 0 ? 500 : 204;
        if (failFirst > 0) failFirst--;
      } catch (e) {
        entry.error = String(e.message || e);
        entry.status = 401;
      }
      log.push(entry);
      res.statusCode = entry.status;
      res.end();
    });
  })
  .listen(0, "127.0.0.1", function () {
    console.log(this.address().port);
  });
