// A real graphql-sse client (npm `graphql-sse`, distinct connections mode) for
// tests/graph/test_subscription_sse.py:
//   node graphql_sse_client.mjs URL KEY COUNT FILTER_JSON
// Subscribes to taskChanged with the key in `Authorization`, prints one JSON line when the
// stream is connected, one per `next` payload, and exits once COUNT payloads arrived. A
// refused or failed subscription prints {"error": ..., "status": ...} and exits 0.
// The package is found through NODE_PATH (scripts/test.sh installs it in .tools/node).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { createClient } = require("graphql-sse");

const [url, key, count, filter] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const client = createClient({
  url,
  headers: key ? { Authorization: `Bearer ${key}` } : {},
  retryAttempts: 0,
});
let received = 0;
const dispose = client.subscribe(
  {
    query: "subscription($f: TaskFilter) { taskChanged(filter: $f) { id vendor nativeId status updatedAt } }",
    variables: { f: JSON.parse(filter) },
  },
  {
    next: (payload) => {
      print({ next: payload });
      received += 1;
      if (received >= Number(count)) {
        dispose();
        client.dispose();
        process.exit(0);
      }
    },
    error: (error) => {
      print({ error: String(error?.message ?? error), status: error?.response?.status ?? null });
      process.exit(0);
    },
    complete: () => process.exit(0),
  },
  { connected: () => print({ connected: true }) },
);
