// The frontend's returnTo page: read what the service handed on, take it out of the address bar at
// once (history.replaceState: no code or state in the history, a bookmark or a Referer), then finish
// as the user who started with completeGitOAuth.
const COMPLETE = `mutation Complete($input: CompleteGitOAuthInput!) {
  completeGitOAuth(input: $input) {
    __typename
    ... on Integration { id provider authMethod repositoryAccess reconnectBy status account { login } }
    ... on Error { code message }
  }
}`;

const handedOn = new URLSearchParams(window.location.search);
history.replaceState(null, "", window.location.pathname);

(async () => {
  const status = document.getElementById("status");
  const result = document.getElementById("result");
  if (handedOn.get("error")) {
    status.textContent = `The connection did not happen: ${handedOn.get("error")}`;
    document.body.dataset.outcome = handedOn.get("error");
    return;
  }
  const input = { state: handedOn.get("state"), code: handedOn.get("code") };
  if (handedOn.get("installationId")) input.installationId = handedOn.get("installationId");
  const config = await demoConfig();
  const answer = await graphql(config, demoUser(), COMPLETE, { input });
  const completed = answer.data && answer.data.completeGitOAuth;
  result.textContent = JSON.stringify(completed || answer.errors, null, 2);
  if (completed && completed.__typename === "Integration") {
    status.textContent = `Connected ${completed.provider} account ${completed.account.login} for ${demoUser()}`;
  } else {
    status.textContent = completed ? completed.message : "The service answered an error";
  }
  document.body.dataset.outcome = completed ? completed.__typename : "error";
})();
