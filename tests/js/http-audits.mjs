// The GraphQL-over-HTTP specification's conformance audits (npm `graphql-http`) against a live
// server: prints one JSON array of {id, name, status, reason}; tests/test_graphql_over_http.py
// asserts that every MUST and SHOULD passes.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null });
}
process.stdout.write(JSON.stringify(results));
