// GraphiQL against the demo's service, with the Authorization header of the user picked on the demo
// page, from the page's configuration. Nothing is read from or written to the URL, and the headers are
// not persisted (the JWTs change with every run).
const WELCOME = `# Git integrations demo: GraphiQL as platform user "%USER%".
# The Authorization header is filled in (Headers tab below). Try:
{
  integrations { id provider host account { login } status repositoryAccess expiresAt reconnectBy }
}
`;

(async () => {
  const config = await demoConfig();
  const user = demoUser();
  const fetcher = GraphiQL.createFetcher({ url: config.graphqlUrl });
  const headers = JSON.stringify({ Authorization: `Bearer ${config.jwts[user]}` }, null, 2);
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: WELCOME.replace("%USER%", user),
      headers,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
    }),
  );
})();
