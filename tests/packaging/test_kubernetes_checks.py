"""deploy/kubernetes as kustomize renders it and as cluster operators check it.

The manifests are rendered by the kubectl of tools/k8s-tools.txt (its built-in kustomize), validated
against the Kubernetes API schemas by kubernetes-validate, and scanned by checkov, all from .tools/k8s
(Makefile `k8s-tools`, hash-checked, never in uv.lock). Every checkov finding must be explained in
deploy/kubernetes/README.md, and every explanation must still be a finding.

The NetworkPolicy is checked by what it allows: a small evaluator of the NetworkPolicy rules (peers,
selectors, ipBlock with except, ports) answers whether the API's pods may reach an address or a pod, and
the answers are compared with what the SSRF guard (app.net.addresses) refuses.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.net.addresses import forbidden_reason

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
TOOLS = ROOT / ".tools" / "k8s" / "bin"
NAMESPACE = "git-integrations"
DIGEST_REFERENCE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
# The oldest Kubernetes the manifests are written for (README.md) and the newest schema the tool knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
# What the components are enabled with in the copy an operator would make (README.md, "NetworkPolicy").
OPERATOR_PARAMETERS = {
    "PLATFORM_NAMESPACE": "frontend",
    "MONITORING_NAMESPACE": "observability",
    "MONGODB_NAMESPACE": "databases",
    # A cluster whose pods and services use public ranges (GKE's privately used public IPs, for one).
    "POD_CIDR_IPV4": "34.118.0.0/16",
    "SERVICE_CIDR_IPV4": "34.119.0.0/20",
    "POD_CIDR_IPV6": "2600:1900:4000::/44",
    "SERVICE_CIDR_IPV6": "2600:1900:5000::/108",
    "JWKS_CIDR": "10.20.0.5/32",
    "OTEL_COLLECTOR_NAMESPACE": "observability",
    "GIT_HOSTS_CIDR": "192.168.10.0/24",
}
COMPONENTS = ("components/jwks", "components/otel-collector", "components/on-premises-git-hosts")


# --- the tools ------------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = TOOLS / name
    assert path.exists(), f"{path} is missing: `make k8s-tools` installs it (`make test` does)"
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    """The pinned tools, installed (or found up to date) by the Makefile's own recipe."""
    subprocess.run(["make", "--no-print-directory", "-s", "k8s-tools"], cwd=ROOT, check=True)  # noqa: S607


def tool_environment() -> dict[str, str]:
    """PATH starts with the pinned tools (checkov's kustomize scan runs `kubectl` from PATH); nothing of
    this process's settings leaks in (checkov reads LOG_LEVEL too)."""
    keep = {"HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    return env | {"PATH": f"{TOOLS}{os.pathsep}/usr/bin{os.pathsep}/bin"}


def render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        env=tool_environment(),
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def operator_copy(destination: Path, parameters: dict[str, str], components: tuple[str, ...]) -> Path:
    """deploy/kubernetes as an operator adapts it: network-parameters.yaml edited, components enabled."""
    shutil.copytree(KUBE, destination)
    parameters_file = destination / "network-parameters.yaml"
    (document,) = yaml.safe_load_all(parameters_file.read_text())
    unknown = set(parameters) - set(document["data"])
    assert not unknown, f"not parameters: {unknown}"
    document["data"].update(parameters)
    parameters_file.write_text(yaml.safe_dump(document))
    kustomization = destination / "kustomization.yaml"
    text = kustomization.read_text()
    assert "# components:\n" in text
    for component in components:
        assert f"#   - {component}\n" in text, f"kustomization.yaml does not offer {component}"
        text = text.replace(f"#   - {component}\n", f"  - {component}\n")
    kustomization.write_text(text.replace("# components:\n", "components:\n"))
    return destination


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, Any]]:
    return render(KUBE)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    copy = operator_copy(tmp_path_factory.mktemp("adapted") / "kubernetes", OPERATOR_PARAMETERS, COMPONENTS)
    return render(copy)


def by_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in resources if doc["kind"] == kind]


def containers(resources: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload, pod template, container) of every workload."""
    for doc in resources:
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            template = doc["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        for container in template["spec"]["containers"]:
            yield f"{doc['kind']}/{doc['metadata']['name']}", template, container


# --- what gets applied ----------------------------------------------------------------------------


def test_every_resource_is_in_the_namespace_that_enforces_the_restricted_pod_security(
    shipped: list[dict[str, Any]],
) -> None:
    (namespace,) = by_kind(shipped, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in shipped:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
    kinds = {doc["kind"] for doc in shipped}
    assert kinds == {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "CronJob",
        "NetworkPolicy",
    }
    # The parameters are kustomize's input only, and every value marked for replacement was replaced.
    assert [c["metadata"]["name"] for c in by_kind(shipped, "ConfigMap")] == ["git-integrations"]
    assert "network-parameters" not in yaml.safe_dump_all(shipped)


def test_every_container_runs_the_image_by_digest(shipped: list[dict[str, Any]]) -> None:
    images = set()
    for workload, _, container in containers(shipped):
        assert DIGEST_REFERENCE.match(container["image"]), f"{workload}: {container['image']} has no digest"
        assert container["imagePullPolicy"] == "IfNotPresent", workload
        images.add(container["image"])
    assert len(images) == 1, f"the workloads run different images: {images}"


def test_the_documented_way_to_set_the_image_pins_every_workload_to_that_digest(tmp_path: Path) -> None:
    """README.md says `kustomize edit set image git-integrations=REGISTRY/git-integrations@sha256:DIGEST`;
    that command writes this `images` entry."""
    readme = (KUBE / "README.md").read_text()
    assert "kustomize edit set image git-integrations=" in readme
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBE, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    digest = "sha256:" + "3f" * 32
    kustomization["images"] = [
        {
            "name": "git-integrations",
            "newName": "registry.internal:5000/platform/git-integrations",
            "digest": digest,
        }
    ]
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    images = {container["image"] for _, _, container in containers(render(copy))}
    assert images == {f"registry.internal:5000/platform/git-integrations@{digest}"}


def test_no_secret_reaches_a_container_through_its_environment(shipped: list[dict[str, Any]]) -> None:
    for workload, template, container in containers(shipped):
        assert all("secretRef" not in source for source in container.get("envFrom", [])), workload
        assert all("valueFrom" not in entry for entry in container.get("env", [])), workload
        secret_volumes = [v for v in template["spec"]["volumes"] if "secret" in v]
        assert [v["secret"]["secretName"] for v in secret_volumes] == ["git-integrations"], workload
        assert secret_volumes[0]["secret"]["defaultMode"] == 0o440, workload


# --- the NetworkPolicy, by what it allows ---------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """The other end of a connection: a pod (namespace and labels, with its IP) or an address outside."""

    ip: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_matches(rule_peer: dict[str, Any], peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        network = ipaddress.ip_network(block["cidr"])
        if address.version != network.version or address not in network:
            return False
        return not any(
            address in ipaddress.ip_network(excluded)
            for excluded in block.get("except", [])
            if ipaddress.ip_network(excluded).version == address.version
        )
    if peer.namespace is None:  # an address outside the cluster matches only ipBlock peers
        return False
    if "namespaceSelector" in rule_peer:
        namespace_labels = {"kubernetes.io/metadata.name": peer.namespace}
        if not selector_matches(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif peer.namespace != policy_namespace:  # a podSelector alone: the policy's own namespace
        return False
    return selector_matches(rule_peer.get("podSelector", {}), peer.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str, named: dict[str, int]) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None or named.get(str(wanted), wanted) == port:
            return True
    return False


def allows(
    policies: list[dict[str, Any]],
    pod_labels: dict[str, str],
    direction: str,  # "Ingress" or "Egress"
    peer: Peer,
    port: int,
    protocol: str = "TCP",
    named_ports: dict[str, int] | None = None,
) -> bool:
    """Whether the NetworkPolicies let this pod's traffic in (from ``peer``) or out (to ``peer``)."""
    selecting = [
        p
        for p in policies
        if selector_matches(p["spec"]["podSelector"], pod_labels) and direction in p["spec"]["policyTypes"]
    ]
    assert selecting, f"no NetworkPolicy isolates {pod_labels} for {direction}: everything would be allowed"
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            if not port_matches(rule.get("ports"), port, protocol, named_ports or {}):
                continue
            rule_peers = rule.get(peers_key)
            if not rule_peers or any(
                peer_matches(p, peer, policy["metadata"]["namespace"]) for p in rule_peers
            ):
                return True
    return False


@dataclass
class Cluster:
    """The rendered manifests, asked what the service's pods may do."""

    resources: list[dict[str, Any]]

    @property
    def policies(self) -> list[dict[str, Any]]:
        return by_kind(self.resources, "NetworkPolicy")

    def pod(self, kind: str) -> tuple[dict[str, str], dict[str, int]]:
        (workload,) = by_kind(self.resources, kind)
        template = (
            workload["spec"]["template"]
            if kind == "Deployment"
            else workload["spec"]["jobTemplate"]["spec"]["template"]
        )
        named = {
            p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        return template["metadata"]["labels"], named

    def may_reach(self, peer: Peer, port: int, protocol: str = "TCP", kind: str = "Deployment") -> bool:
        labels, _ = self.pod(kind)
        return allows(self.policies, labels, "Egress", peer, port, protocol)

    def reachable_from(self, peer: Peer, port: int, kind: str = "Deployment") -> bool:
        labels, named = self.pod(kind)
        return allows(self.policies, labels, "Ingress", peer, port, named_ports=named)


def outside(ip: str) -> Peer:
    return Peer(ip)


def pod_in(namespace: str, ip: str = "10.244.3.7", **labels: str) -> Peer:
    return Peer(ip, namespace, labels)


PUBLIC = ["140.82.112.3", "172.65.251.78", "2606:50c0:8000::154", "2a00:1450:4001:80b::200e"]
# Every kind of address the SSRF guard refuses that could leave the pod (loopback never does).
REFUSED = [
    "10.0.0.1",
    "10.96.0.10",
    "172.16.5.4",
    "172.31.255.254",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.20.10",
    "0.0.0.1",
    "224.0.0.251",
    "240.0.0.1",
    "fd00:ec2::254",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "64:ff9b:1::a00:1",
    "::ffff:10.0.0.1",
    "::",
]


def test_the_samples_are_what_the_guard_refuses_and_lets_through() -> None:
    for address in REFUSED:
        assert forbidden_reason(ipaddress.ip_address(address)) is not None, address
    for address in PUBLIC:
        assert forbidden_reason(ipaddress.ip_address(address)) is None, address


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_the_pods_reach_the_public_internet_and_nothing_the_guard_refuses(
    shipped: list[dict[str, Any]], kind: str
) -> None:
    cluster = Cluster(shipped)
    for address in PUBLIC:
        assert cluster.may_reach(outside(address), 443, kind=kind), address
        assert cluster.may_reach(outside(address), 27017, kind=kind), address  # MongoDB Atlas
        assert not cluster.may_reach(outside(address), 443, "UDP", kind=kind), address
    for address in REFUSED:
        for port in (80, 443, 8080):
            assert not cluster.may_reach(outside(address), port, kind=kind), f"{address}:{port}"


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_inside_the_cluster_the_pods_reach_dns_and_mongodb_only(
    shipped: list[dict[str, Any]], kind: str
) -> None:
    cluster = Cluster(shipped)
    dns = pod_in("kube-system", "10.244.0.5", **{"k8s-app": "kube-dns"})
    assert cluster.may_reach(dns, 53, "UDP", kind=kind)
    assert cluster.may_reach(dns, 53, "TCP", kind=kind)
    assert not cluster.may_reach(dns, 443, kind=kind)
    assert not cluster.may_reach(
        pod_in("kube-system", "10.244.0.6", app="metrics-server"), 53, "UDP", kind=kind
    )
    mongodb = pod_in("mongodb", "10.244.1.9", app="mongo")
    assert cluster.may_reach(mongodb, 27017, kind=kind)
    assert not cluster.may_reach(mongodb, 22, kind=kind)
    for namespace in ("platform", "monitoring", NAMESPACE, "default"):
        assert not cluster.may_reach(pod_in(namespace, "10.244.2.2", app="any"), 27017, kind=kind), namespace
    # A Service's cluster IP and the kubelet's node port are not the internet either.
    assert not cluster.may_reach(outside("10.96.0.1"), 443, kind=kind)
    assert not cluster.may_reach(outside("10.0.0.12"), 10250, kind=kind)


def metrics_port(resources: list[dict[str, Any]]) -> int:
    """METRICS_PORT as the ConfigMap sets it, which must be the Deployment's `metrics` port."""
    (config_map,) = by_kind(resources, "ConfigMap")
    port = int(config_map["data"]["METRICS_PORT"])
    _, named = Cluster(resources).pod("Deployment")
    assert named == {"http": 8000, "metrics": port}
    return port


def test_only_the_platform_reaches_the_api_port_and_only_monitoring_the_metrics_port(
    shipped: list[dict[str, Any]],
) -> None:
    cluster = Cluster(shipped)
    metrics = metrics_port(shipped)
    gateway = pod_in("platform", "10.244.5.5", app="gateway")
    scraper = pod_in("monitoring", "10.244.7.7", app="prometheus")
    assert cluster.reachable_from(gateway, 8000)
    assert not cluster.reachable_from(gateway, metrics)  # /metrics names the hosts: not for callers
    assert cluster.reachable_from(scraper, metrics)
    assert not cluster.reachable_from(scraper, 8000)
    for port in (8000, metrics, 9999):
        for namespace in (NAMESPACE, "default", "kube-system"):
            assert not cluster.reachable_from(pod_in(namespace, "10.244.6.6", app="any"), port), namespace
        assert not cluster.reachable_from(outside("140.82.112.3"), port)
        assert not cluster.reachable_from(gateway, port, kind="CronJob")
        assert not cluster.reachable_from(scraper, port, kind="CronJob")


def test_the_parameters_and_the_components_open_exactly_what_they_name(adapted: list[dict[str, Any]]) -> None:
    cluster = Cluster(adapted)
    # The namespaces.
    assert cluster.reachable_from(pod_in("frontend", app="gateway"), 8000)
    assert not cluster.reachable_from(pod_in("platform", app="gateway"), 8000)
    assert cluster.reachable_from(pod_in("observability", app="prometheus"), metrics_port(adapted))
    assert not cluster.reachable_from(pod_in("monitoring", app="prometheus"), metrics_port(adapted))
    assert cluster.may_reach(pod_in("databases", app="mongo"), 27017)
    assert not cluster.may_reach(pod_in("mongodb", app="mongo"), 27017)
    # The cluster's ranges are denied even where they are public addresses.
    for address in ("34.118.20.1", "34.119.0.10", "2600:1900:4000::5", "2600:1900:5000::a"):
        assert not cluster.may_reach(outside(address), 443), address
    assert cluster.may_reach(outside("34.120.0.1"), 443)
    # The components: a JWKS endpoint, the collector, on-premises Git hosts; for the API pods only.
    assert cluster.may_reach(outside("10.20.0.5"), 443)
    assert not cluster.may_reach(outside("10.20.0.5"), 80)
    assert not cluster.may_reach(outside("10.20.0.6"), 443)
    assert cluster.may_reach(pod_in("observability", app="collector"), 4318)
    assert not cluster.may_reach(pod_in("observability", app="collector"), 4317)
    assert cluster.may_reach(outside("192.168.10.20"), 443)
    assert cluster.may_reach(outside("192.168.10.20"), 80)
    assert not cluster.may_reach(outside("192.168.11.20"), 443)
    assert not cluster.may_reach(outside("169.254.169.254"), 80)
    assert not cluster.may_reach(outside("10.20.0.5"), 443, kind="CronJob")
    assert not cluster.may_reach(outside("192.168.10.20"), 443, kind="CronJob")


# --- kubernetes-validate and checkov --------------------------------------------------------------


def test_kubernetes_validate_accepts_the_rendered_manifests_strictly(
    shipped: list[dict[str, Any]], adapted: list[dict[str, Any]], tmp_path: Path
) -> None:
    files = []
    for name, resources in (("shipped.yaml", shipped), ("adapted.yaml", adapted)):
        (tmp_path / name).write_text(yaml.safe_dump_all(resources))
        files.append(str(tmp_path / name))
    for version in KUBERNETES_VERSIONS:
        result = subprocess.run(
            [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *files],
            capture_output=True,
            text=True,
            check=False,
            env=tool_environment(),
        )
        assert result.returncode == 0, f"Kubernetes {version}:\n{result.stdout}{result.stderr}"


def explained_findings() -> dict[tuple[str, str], str]:
    """(check id, file) -> reason, from the table in deploy/kubernetes/README.md."""
    readme = (KUBE / "README.md").read_text()
    section = readme.split("## What checkov reports", 1)[1].split("\n## ", 1)[0]
    explained = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(CKV\w+)` \| `([^`]+)` \| (.+) \|$", line)
        if match:
            explained[(match[1], match[2])] = match[3].strip()
    return explained


def test_checkov_finds_nothing_that_the_readme_does_not_explain(tmp_path: Path) -> None:
    """checkov on the directory as operators run it (the files as written, the kustomize rendering, the
    secret scan) and on the copy with every component enabled."""
    scanned = tmp_path / "scan"
    shutil.copytree(KUBE, scanned / "shipped")
    operator_copy(scanned / "adapted", OPERATOR_PARAMETERS, COMPONENTS)
    result = subprocess.run(
        [
            tool("checkov"),
            "--directory",
            str(scanned),
            "--framework",
            "kubernetes",
            "kustomize",
            "secrets",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=tool_environment(),
    )
    assert result.returncode in (0, 1), result.stderr
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"kubernetes", "kustomize", "secrets"}, result.stderr
    passed = {r["check_type"]: r["summary"]["passed"] for r in reports}
    assert passed["kubernetes"] > 100 and passed["kustomize"] > 100, passed  # it did scan the manifests
    found: dict[tuple[str, str], list[str]] = {}
    for report in reports:
        for failure in report["results"]["failed_checks"]:
            # ".../shipped/secret.example.yaml" -> "secret.example.yaml" (the kustomize scan names the
            # kustomization.yaml it rendered)
            where = re.search(r"/(?:shipped|adapted)/(.+)$", failure["file_path"])
            assert where, failure["file_path"]
            found.setdefault((failure["check_id"], where[1]), []).append(failure["resource"])
    explained = explained_findings()
    unexplained = {key: resources for key, resources in found.items() if key not in explained}
    assert not unexplained, f"checkov findings not explained in deploy/kubernetes/README.md: {unexplained}"
    stale = set(explained) - set(found)
    assert not stale, f"deploy/kubernetes/README.md explains findings checkov no longer reports: {stale}"
