// Strawberry's GraphiQL boot script (strawberry/static/graphiql.html, strawberry-graphql 0.341),
// moved out of the HTML so that the page runs under `script-src 'self'`. Changed: the welcome
// text says how to authenticate, and nothing is read from or written to the page's URL (below).
const EXAMPLE_QUERY = `# GraphiQL for the Git integrations service
#
# Every operation needs a caller. Open the Headers tab below and paste
#
#     {"Authorization": "Bearer <JWT>"}
#
# (a development JWT: python -m app dev-token --user alice), then run
#
#     { integrations { id provider host account { login } } }
#
# Keyboard shortcuts:
#
#       Run Query:  Ctrl-Enter (or press the play button above)
#
#   Auto Complete:  Ctrl-Space (or just start typing)
#
`;

// Strawberry's page reads the query, the variables and the *headers* from the address bar and writes
// every edit back into it (for sharing links). Here the address bar is left alone, both ways: a link
// must not be able to put an Authorization header (someone else's JWT) into a developer's GraphiQL,
// and variables (a pasted access token, say) must not land in the URL, the browser history or a
// Referer. GraphiQL keeps the editors in this origin's localStorage instead.

const fetchURL = window.location.origin + window.location.pathname;

function httpUrlToWebSockeUrl(url) {
  const parsedURL = new URL(url);
  const protocol = parsedURL.protocol === "http:" ? "ws:" : "wss:";
  parsedURL.protocol = protocol;
  parsedURL.hash = "";
  return parsedURL.toString();
}

const defaultHeaders = {};
const csrfToken = Cookies.get("csrftoken");

if (csrfToken) {
  defaultHeaders["x-csrftoken"] = csrfToken;
}

const subscriptionUrl = httpUrlToWebSockeUrl(fetchURL);

const fetcher = GraphiQL.createFetcher({
  url: fetchURL,
  headers: defaultHeaders,
  subscriptionUrl,
});

function GraphiQLWithExplorer() {
  const [query, setQuery] = React.useState(EXAMPLE_QUERY);

  function onEditQuery(newQuery) {
    setQuery(newQuery);
  }

  const explorerPlugin = GraphiQLPluginExplorer.explorerPlugin();

  return React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    plugins: [explorerPlugin],
    query: query,
    onEditQuery: onEditQuery,
    inputValueDeprecation: true,
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: true,
  });
}

const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(React.createElement(GraphiQLWithExplorer));
