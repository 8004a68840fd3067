// Shared by the demo's pages: its configuration (never the URL) and one GraphQL call as a demo user.
async function demoConfig() {
  const response = await fetch("/config.json", { cache: "no-store" });
  return response.json();
}

function demoUser() {
  return sessionStorage.getItem("demoUser") || "alice";
}

async function graphql(config, user, query, variables) {
  const response = await fetch(config.graphqlUrl, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${config.jwts[user]}` },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}
