// Runs the GraphQL-over-HTTP spec's own server audit (npm package graphql-http, pinned in
// tools/npm/package-lock.json) against the URL given, and prints one JSON line per audit:
// {id, name, status ("ok" | "notice" for a MAY | "warn" for a SHOULD | "error" for a MUST), reason}.
// Run by tests/api/test_graphql_over_http.py with NODE_PATH=.tools/npm/node_modules (`make npm-tools`).
"use strict";
const { auditServer } = require("graphql-http");

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: node graphql_http_audit.cjs URL");
  const results = await auditServer({ url });
  for (const result of results) {
    const line = { id: result.id, name: result.name, status: result.status };
    if (result.status !== "ok") line.reason = result.reason;
    process.stdout.write(JSON.stringify(line) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(2);
});
