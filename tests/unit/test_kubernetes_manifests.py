"""deploy/kubernetes/ against the code: the variables it sets are ones the settings read, its secrets are
files of the mounted Secret named by the X_FILE settings, its probes hit real routes, its commands exist,
its selectors select the API's pods and its pods run unprivileged.

These read the files as written; tests/packaging/test_kubernetes_checks.py renders them with kustomize and
checks what gets applied (namespace, image digest, NetworkPolicy, kubernetes-validate, checkov)."""

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
from app.settings.model import KNOWN_VARIABLES, SECRET_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
NAME = "git-integrations"
# The secrets the shipped manifests read (the others, OAuth client secrets, are the operator's choice).
REQUIRED_SECRETS = {"MONGODB_URI", "ENCRYPTION_KEYS", "AUTH_JWT_SECRET"}
# Files in deploy/kubernetes that are not resources of the kustomization.
NOT_RESOURCES = {"kustomization.yaml", "secret.example.yaml", "network-replacements.yaml"}
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


def local_config(doc: dict[str, Any]) -> bool:
    """Read by kustomize only (network-parameters.yaml), never applied."""
    annotations = doc["metadata"].get("annotations", {})
    return bool(annotations.get("config.kubernetes.io/local-config") == "true")


@pytest.fixture(scope="module")
def resources(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    return [doc for name in kustomization["resources"] for doc in load(KUBE / name) if not local_config(doc)]


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


def environment(container: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Every variable the container gets: name -> (where from, value as written)."""
    variables: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"unexpected envFrom source {source} (secrets are files)"
        config_map = one(resources, "ConfigMap", source["configMapRef"]["name"])
        for key, value in config_map.get("data", {}).items():
            variables[key] = ("ConfigMap", str(value))
    for entry in container.get("env", []):
        assert "value" in entry, f"{entry['name']}: valueFrom (secrets are files, settings are values)"
        variables[entry["name"]] = ("env", str(entry["value"]))
    return variables


def secret_mounts(template: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Mount path -> Secret name, for each Secret volume the container mounts."""
    volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
    mounts = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" in volume:
            assert mount.get("readOnly") is True, f"{mount['mountPath']} is writable"
            mounts[mount["mountPath"]] = volume["secret"]["secretName"]
    return mounts


def secret_files(variables: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Secret name -> the path its X_FILE names, for each X_FILE that is set (an empty value is unset)."""
    return {
        name: variables[f"{name}_FILE"][1]
        for name in SECRET_VARIABLES
        if variables.get(f"{name}_FILE", ("", ""))[1].strip()
    }


def with_files(variables: dict[str, str], directory: Path, contents: dict[str, str]) -> dict[str, str]:
    """``variables`` with the Secret mount moved to ``directory``, holding ``contents`` as its files."""
    for key, value in contents.items():
        (directory / key).write_text(value + "\n")
    return {
        name: value.replace(SECRET_MOUNT, str(directory)) if name.endswith("_FILE") else value
        for name, value in variables.items()
    }


SECRET_MOUNT = "/run/secrets/git-integrations"


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
    # The Secret holds secrets only: each key is the file of one secret variable.
    unknown = set(example_secret["stringData"]) - set(SECRET_VARIABLES)
    assert not unknown, f"secret.example.yaml: {sorted(unknown)} are not secret settings"
    for workload, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            unknown = set(environment(container, resources)) - KNOWN_VARIABLES
            assert not unknown, f"{workload}: {sorted(unknown)} are not settings"


def test_secrets_are_files_of_the_mounted_secret_named_by_their_x_file_setting(
    resources: list[dict[str, Any]], example_secret: dict[str, Any]
) -> None:
    assert not any(doc["kind"] == "Secret" for doc in resources), "a Secret with values is committed"
    assert example_secret["metadata"]["namespace"] == NAME
    for workload, template in pod_specs(resources):
        for container in template["spec"]["containers"]:
            variables = environment(container, resources)
            assert not set(SECRET_VARIABLES) & set(variables), f"{workload}: a secret in the environment"
            mounts = secret_mounts(template, container)
            assert mounts == {SECRET_MOUNT: example_secret["metadata"]["name"]}, workload
            files = secret_files(variables)
            assert set(files) >= REQUIRED_SECRETS, f"{workload}: {sorted(REQUIRED_SECRETS - set(files))}"
            for name, path in files.items():
                # The key of the Secret that Kubernetes writes to that path.
                assert path == f"{SECRET_MOUNT}/{name}", f"{workload}: {name}_FILE is {path}"
                assert name in example_secret["stringData"], f"secret.example.yaml has no {name}"


def test_the_manifests_environment_passes_the_start_up_checks_and_the_placeholders_do_not(
    resources: list[dict[str, Any]], example_secret: dict[str, Any], tmp_path: Path
) -> None:
    deployment = one(resources, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    variables = {name: value for name, (_, value) in environment(container, resources).items()}

    real = tmp_path / "real"
    real.mkdir()
    settings = Settings.from_env(with_files(variables, real, VALID_SECRETS))
    assert settings.production
    assert settings.host == "0.0.0.0"
    assert settings.mongodb_uri is not None
    assert settings.mongodb_uri.reveal() == VALID_SECRETS["MONGODB_URI"]
    assert [key.kid for key in settings.encryption_keys] == ["k1"]
    assert settings.auth_jwt_secret is not None
    assert "retryWrites=true" in example_secret["stringData"]["MONGODB_URI"]
    assert "w=majority" in example_secret["stringData"]["MONGODB_URI"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert settings.port == ports["http"] == 8000
    # /metrics only on its own port in production (issue 11, item 7): the one the container exposes.
    assert settings.metrics_port == ports["metrics"] == 9090

    example = tmp_path / "example"
    example.mkdir()
    with pytest.raises(ConfigurationError):  # the placeholders of secret.example.yaml never start a pod
        Settings.from_env(with_files(variables, example, example_secret["stringData"]))


# --- the pods -------------------------------------------------------------------------------------


def test_every_manifest_is_in_the_kustomization(kustomization: dict[str, Any]) -> None:
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBE.glob("*.yaml")} - NOT_RESOURCES
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
