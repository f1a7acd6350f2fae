// Verifies webhook deliveries with the independent Standard Webhooks library (npm `standardwebhooks`),
// for sidecar/tests/webhooks.rs: our own signing code is not trusted to check itself.
//
//   node webhook_verify.mjs <file.json>
//
// The file holds {"secret": "whsec_...", "deliveries": [{"headers": {...}, "body": "..."}]}. Prints
// {"verified": N, "ids": [...]} when every delivery verifies; exits 1 naming the first that does not.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const { secret, deliveries } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const webhook = new Webhook(secret);
const ids = [];
for (const [index, delivery] of deliveries.entries()) {
  try {
    webhook.verify(delivery.body, delivery.headers);
  } catch (err) {
    console.error(`delivery ${index} (${delivery.headers["webhook-id"]}) does not verify: ${err.message}`);
    process.exit(1);
  }
  ids.push(delivery.headers["webhook-id"]);
}
console.log(JSON.stringify({ verified: ids.length, ids }));
