// Verifies every request a receiver logged (receiver.py --log: one JSON object per line with
// id, timestamp, signature and body) with the Standard Webhooks reference implementation, the
// npm package `standardwebhooks`, so a signing bug cannot hide behind a verifier written to
// match it. Usage: node verify.js LOG SECRET [SECRET...]; prints "verified N" and exits 1 when
// any request fails with every secret.
"use strict";
const fs = require("fs");
const { Webhook } = require("standardwebhooks");

const [log, ...secrets] = process.argv.slice(2);
const lines = fs.readFileSync(log, "utf8").split("\n").filter((l) => l.trim() !== "");
let verified = 0;
for (const line of lines) {
  const r = JSON.parse(line);
  const headers = {
    "webhook-id": r.id,
    "webhook-timestamp": r.timestamp,
    "webhook-signature": r.signature,
  };
  const ok = secrets.some((secret) => {
    try {
      new Webhook(secret).verify(r.body, headers);
      return true;
    } catch (e) {
      return false;
    }
  });
  if (!ok) {
    console.error(`not verified: ${r.id} ${r.signature}`);
    process.exit(1);
  }
  verified++;
}
console.log(`verified ${verified}`);
