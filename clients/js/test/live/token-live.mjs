// The real client against a service that needs a token: run by
// tests/e2e/test_js_client_live.py as `node token-live.mjs <service-url> <token>`.
// With the token the stream is read with fetch and an Authorization header; without
// it every answer is a 401 with the service's code.
import { test } from "node:test";

import { createSharedStateClient } from "../../index.js";

const [serviceUrl, token] = process.argv.slice(2);

async function main() {
  const client = createSharedStateClient({ baseUrl: serviceUrl, token: async () => token });
  await new Promise((resolve) => {
    const off = client.subscribe(() => {
      if (client.getSnapshot() !== null && client.getStatus().connection === "live") {
        off();
        resolve();
      }
    });
  });
  const user = await client.getUser();
  const refused = createSharedStateClient({ baseUrl: serviceUrl, live: false });
  const error = await refused.getSettings().catch((caught) => caught);
  refused.close();
  console.log(JSON.stringify({ version: client.getSnapshot().version, username: user?.username ?? null, refused: { status: error.status, code: error.code } }));
  client.close();
}

if (!serviceUrl) {
  test.skip("token-live.mjs runs from tests/e2e/test_js_client_live.py, with a URL and token");
} else {
  const timer = setTimeout(() => {
    console.error("timed out");
    process.exit(1);
  }, 20000);
  main().then(
    () => clearTimeout(timer),
    (error) => {
      console.error(error?.stack ?? String(error));
      process.exit(1);
    },
  );
}
