// Runs the GraphQL-over-HTTP reference audit (graphql-http's `serverAudits`) against a
// running gateway and prints one JSON object: the count per status and every result that is
// not "ok" (its audit name and reason). Usage: node graphql_http_audit.mjs <url>
// The package is found through NODE_PATH (scripts/test.sh installs it in .tools/node).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { serverAudits } = require("graphql-http");

const url = process.argv[2];
if (!url) {
  console.error("usage: node graphql_http_audit.mjs <graphql url>");
  process.exit(2);
}

const counts = { ok: 0, warn: 0, notice: 0, error: 0 };
const problems = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  if (result.status !== "ok") {
    let body = null;
    try {
      body = await result.response.text();
    } catch {
      body = null;
    }
    problems.push({
      id: audit.id,
      name: audit.name,
      status: result.status,
      reason: result.reason,
      responseStatus: result.response?.status ?? null,
      body,
    });
  }
}
const { version } = require("graphql-http/package.json");
console.log(JSON.stringify({ version, counts, problems }));
