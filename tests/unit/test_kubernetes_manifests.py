"""deploy/kubernetes/ against the code: the variables it sets are ones the settings read, its probes hit
real routes, its commands exist, its selectors select the API's pods and its pods run unprivileged."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import Route

from app.__main__ import main as cli_main
from app.domain.errors import ConfigurationError
from app.main import create_app
from app.settings import KNOWN_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
NAME = "git-integrations"
# Variables whose values are secrets: they may come only from the Secret, never a ConfigMap or the spec.
SECRET_VARIABLES = {
    "MONGODB_URI",
    "ENCRYPTION_KEYS",
    "AUTH_JWT_SECRET",
    "GITHUB_CLIENT_SECRET",
    "GITLAB_CLIENT_SECRET",
    "GITHUB_APP_PRIVATE_KEY",
}
# Values a real Secret would hold, to check that the manifests' environment passes the start-up checks.
VALID_SECRETS = {
    "MONGODB_URI": "mongodb://u:p@mongo-0.mongo:27017,mongo-1.mongo:27017/?replicaSet=rs0&retryWrites=true&w=majority",
    "ENCRYPTION_KEYS": "k1:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
    "AUTH_JWT_SECRET": "s" * 40,
}


# --- loading ----------------------------------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    (doc,) = load(KUBE / "kustomization.yaml")
    return doc


@pytest.fixture(scope="module")
def resources(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for name in kustomization["resources"] for doc in load(KUBE / name)]


@pytest.fixture(scope="module")
def example_secret() -> dict[str, Any]:
    (doc,) = load(KUBE / "secret.example.yaml")
    return doc


def one(resources: list[dict[str, Any]], kind: str, name: str = NAME) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(resources: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(workload, pod template) of every workload: the Deployment and the rotate-keys CronJob."""
    for doc in resources:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            yield f"CronJob/{doc['metadata']['name']}", doc["spec"]["jobTemplate"]["spec"]["template"]


def environment(
    container: dict[str, Any], resources: list[dict[str, Any]], secret: dict[str, Any]
) -> dict[str, tuple[str, str]]:
    """Every variable the container gets: name -> (where from, value as written)."""
    variables: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config_map = one(resources, "ConfigMap", source["configMapRef"]["name"])
            for key, value in config_map.get("data", {}).items():
                variables[key] = ("ConfigMap", str(value))
        elif "secretRef" in source:
            assert source["secretRef"]["name"] == secret["metadata"]["name"], (
                "envFrom names an unknown Secret"
            )
            for key, value in {**secret.get("data", {}), **secret.get("stringData", {})}.items():
                variables[key] = ("Secret", str(value))
        else:
            raise AssertionError(f"unexpected envFrom source {source}")
    for entry in container.get("env", []):
        if "value" in entry:
            variables[entry["name"]] = ("env", str(entry["value"]))
        else:
            ref = entry["valueFrom"]
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"]
                assert ref["secretKeyRef"]["key"] in secret.get("stringData", {}), ref
                variables[entry["name"]] = ("Secret", "")
            else:
                raise AssertionError(f"unexpected valueFrom {ref}")
    return variables


# --- the variables --------------------------------------------------------------------------------


class RecordingEnviron(Mapping[str, str]):
    """An empty environment that remembers every name it was asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_known_variables_are_exactly_the_ones_from_env_reads() -> None:
    environ = RecordingEnviron()
    Settings.from_env(environ)
    assert environ.asked == KNOWN_VARIABLES


def test_known_variables_are_exactly_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    assert documented == KNOWN_VARIABLES


def test_every_variable_the_manifests_set_is_one_the_settings_read(
    resources: list[dict[str, Any]], example_secret: dict[str, Any]
) -> None:
    for doc in resources:
        if doc["kind"] == "ConfigMap":
            unknown = set(doc.get("data", {})) - KNOWN_VARIABLES
            assert not unknown, f"ConfigMap/{doc['metadata']['name']}: {sorted(unknown)} are not settings"
    unknown = set(example_secret["stringData"]) - KNOWN_VARIABLES
    assert not unknown, f"secret.example.yaml: {sorted(unknown)} are not settings"
    for workload, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            unknown = set(environment(container, resources, example_secret)) - KNOWN_VARIABLES
            assert not unknown, f"{workload}: {sorted(unknown)} are not settings"


def test_secrets_come_only_from_the_secret(
    resources: list[dict[str, Any]], example_secret: dict[str, Any]
) -> None:
    assert set(example_secret["stringData"]) >= SECRET_VARIABLES | {"GITHUB_CLIENT_ID", "GITLAB_CLIENT_ID"}
    assert not any(doc["kind"] == "Secret" for doc in resources), "a Secret with values is committed"
    for workload, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            variables = environment(container, resources, example_secret)
            for name in SECRET_VARIABLES:
                assert variables[name][0] == "Secret", f"{workload}: {name} comes from {variables[name][0]}"


def test_the_manifests_environment_passes_the_start_up_checks_and_the_placeholders_do_not(
    resources: list[dict[str, Any]], example_secret: dict[str, Any]
) -> None:
    deployment = one(resources, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    variables = {
        name: value for name, (_, value) in environment(container, resources, example_secret).items()
    }

    settings = Settings.from_env(variables | VALID_SECRETS)
    assert settings.production
    assert settings.host == "0.0.0.0"
    assert settings.mongodb_uri is not None
    uri = settings.mongodb_uri.reveal()
    assert "retryWrites=true" in uri
    assert "w=majority" in uri
    assert "retryWrites=true" in example_secret["stringData"]["MONGODB_URI"]
    assert "w=majority" in example_secret["stringData"]["MONGODB_URI"]
    (port,) = container["ports"]
    assert settings.port == port["containerPort"] == 8000

    with pytest.raises(ConfigurationError):
        Settings.from_env(variables)  # the placeholders of secret.example.yaml never start a pod


# --- the pods -------------------------------------------------------------------------------------


def test_every_manifest_is_in_the_kustomization(kustomization: dict[str, Any]) -> None:
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk
    assert all(load(KUBE / name) for name in listed)


def test_deployment_runs_the_api_with_two_replicas_and_requested_resources(
    resources: list[dict[str, Any]],
) -> None:
    deployment = one(resources, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "app", "serve"]
    requests = container["resources"]["requests"]
    assert requests.get("cpu")
    assert requests.get("memory")
    assert container["resources"]["limits"].get("memory")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["APP_ENV"] == "production"
    assert env["HOST"] == "0.0.0.0"


@pytest.mark.parametrize("command", ["serve", "rotate-keys"])
def test_the_commands_the_manifests_run_exist(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main([command, "--help"])
    assert caught.value.code == 0


def test_every_workload_runs_a_command_of_the_cli(resources: list[dict[str, Any]]) -> None:
    for workload, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            assert container["command"][:3] == ["python", "-m", "app"], workload
            assert container["command"][3] in {"serve", "rotate-keys"}, workload


def test_probes_point_at_routes_the_app_has(resources: list[dict[str, Any]]) -> None:
    app = create_app(Settings())
    paths = {route.path for route in app.routes if isinstance(route, Route)}
    deployment = one(resources, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        if kind not in container:
            continue
        probe = container[kind]["httpGet"]
        assert probe["path"] in paths, f"{kind} hits {probe['path']}, which the app does not serve"
        assert ports.get(probe["port"], probe["port"]) == 8000


def test_pods_run_unprivileged_on_a_read_only_filesystem(resources: list[dict[str, Any]]) -> None:
    dockerfile_user = re.findall(r"^USER\s+(\d+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert dockerfile_user == ["10001"]
    for workload, template in pod_specs(resources):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload
        assert pod["securityContext"]["runAsUser"] == 10001, workload
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", workload
        assert pod.get("automountServiceAccountToken") is False, workload
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, workload
            assert context["allowPrivilegeEscalation"] is False, workload
            assert context["readOnlyRootFilesystem"] is True, workload
            assert context["capabilities"]["drop"] == ["ALL"], workload
            assert "add" not in context["capabilities"], workload
            assert container["resources"]["requests"], workload
            data_dir = next(e["value"] for e in container["env"] if e["name"] == "DATA_DIR")
            writable = {m["mountPath"] for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]}
            assert {"/tmp", data_dir} <= writable, workload  # noqa: S108 (a path in the pod)


def test_service_pdb_hpa_and_spreading_select_the_api_pods(resources: list[dict[str, Any]]) -> None:
    deployment = one(resources, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = one(resources, "Service")
    assert selects(service["spec"]["selector"], pod_labels)
    container_ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert all(p["targetPort"] in container_ports | {8000} for p in service["spec"]["ports"])
    pdb = one(resources, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    hpa = one(resources, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", NAME)
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]

    pod = deployment["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"]
    for constraint in pod["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"]["matchLabels"], pod_labels)
    for term in pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]:
        assert selects(term["podAffinityTerm"]["labelSelector"]["matchLabels"], pod_labels)

    # The key-rotation Job's pods are neither behind the Service nor counted by the PDB.
    for workload, template in pod_specs(resources):
        if not workload.startswith("Deployment/"):
            labels = template["metadata"]["labels"]
            assert not selects(service["spec"]["selector"], labels), workload
            assert not selects(pdb["spec"]["selector"]["matchLabels"], labels), workload
