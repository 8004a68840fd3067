// The demo page: "Connect with …" as the platform's frontend does it, GraphiQL, the push button.
const CONNECT = `mutation Start($input: ConnectGitOAuthInput!) {
  connectGitOAuth(input: $input) {
    __typename
    ... on GitOAuthAuthorization { authorizationUrl }
    ... on Error { message }
  }
}`;

const status = document.getElementById("status");
const select = document.getElementById("user");
select.value = demoUser();
select.addEventListener("change", () => sessionStorage.setItem("demoUser", select.value));

for (const button of document.querySelectorAll("button[data-provider]")) {
  button.addEventListener("click", async () => {
    sessionStorage.setItem("demoUser", select.value);
    const config = await demoConfig();
    const answer = await graphql(config, select.value, CONNECT, {
      input: { provider: button.dataset.provider, returnTo: config.returnTo },
    });
    const result = answer.data && answer.data.connectGitOAuth;
    if (result && result.__typename === "GitOAuthAuthorization") {
      window.location.assign(result.authorizationUrl);
    } else {
      status.textContent = result ? result.message : JSON.stringify(answer.errors);
    }
  });
}

document.getElementById("graphiql").addEventListener("click", () => {
  sessionStorage.setItem("demoUser", select.value);
  window.location.assign("/graphiql");
});

document.getElementById("push").addEventListener("click", async () => {
  const response = await fetch("/push", { method: "POST" });
  const { pushes } = await response.json();
  status.textContent = `${pushes} push(es) sent: read them with the deployer JWT (events of the link)`;
});
