// Run as a child process by client.tabs.test.js with a server's URL: creates a client,
// subscribes, waits for the first state, closes it, and must then exit by itself.
import { test } from "node:test";

import { createSharedStateClient } from "../../index.js";

const url = process.argv[2];
if (!url) {
  // `node --test` also picks this file up: it is not a test by itself.
  test.skip("close-exits.mjs runs as a child of client.tabs.test.js, with a URL");
} else {
  const client = createSharedStateClient({ baseUrl: url, pollIntervalMs: 100 });
  await new Promise((resolve) => {
    client.subscribe(() => {
      if (client.getSnapshot() !== null) resolve();
    });
  });
  const pending = client.getSettings().catch(() => {});
  client.close();
  await pending;
  console.log(`closed after version ${client.getSnapshot().version}`);
}
