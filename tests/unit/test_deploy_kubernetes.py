"""The manifests of deploy/kubernetes (and its etcd overlay, rendered by applying its
JSON patches): every object valid against the Kubernetes schemas offline, every
container's command line accepted by the ``ha-sc`` parser (``$(VAR)`` references given
sample values, and each of them defined in the container's env), and the probes,
Services and scrape annotations on the ports and paths the code serves."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from ha_sc.api.app import ROUTES
from ha_sc.cli.main import cli
from ha_sc.secret_file import write_secret
from ha_sc.telemetry.metrics_http import METRICS_PATH
from tests.etcd_certs import TestCa

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
VERSION = "1.33.0"
"""A Kubernetes version whose schemas kubernetes-validate ships (pod-index label: 1.28+)."""
SAMPLES = {"POD_NAME": "ha-sc-sc-0", "POD_IP": "10.1.2.3", "SPU_ID": "0"}
"""Values the downward API would give, for parsing the command lines."""
SECRETS = "/run/ha-sc/secrets"
"""Where the pods' secret files are: a memory volume their init container fills."""
REFERENCE = re.compile(r"\$\((\w+)\)")
Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base() -> list[Manifest]:
    kustomization = documents(KUBERNETES / "kustomization.yaml")[0]
    return [d for name in kustomization["resources"] for d in documents(KUBERNETES / name)]


def json_pointer_apply(target: Manifest, operation: dict[str, Any]) -> None:
    """One JSON-patch ``replace``/``remove``/``add`` operation (what the overlays use)."""
    *parents, last = [p for p in operation["path"].split("/") if p]
    node: Any = target
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    match operation["op"]:
        case "replace":
            node[key] = operation["value"]
        case "remove":
            del node[key]
        case "add" if isinstance(node, list):
            node.insert(len(node) if key == "-" else key, operation["value"])
        case "add":
            node[key] = operation["value"]
        case other:
            raise AssertionError(f"unsupported patch op {other}")


def overlay(name: str) -> list[Manifest]:
    """The base with the overlay's JSON patches applied to their targets."""
    kustomization = documents(KUBERNETES / "overlays" / name / "kustomization.yaml")[0]
    assert kustomization["resources"] == ["../.."]
    objects = copy.deepcopy(base())
    for patch in kustomization["patches"]:
        target = patch["target"]
        matching = [
            o
            for o in objects
            if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]
        ]
        assert len(matching) == 1, f"patch target {target} matches {len(matching)} objects"
        for operation in yaml.safe_load(patch["patch"]):
            json_pointer_apply(matching[0], operation)
    return objects


RENDERINGS = {"base": base, "etcd": lambda: overlay("etcd")}


def all_objects() -> list[tuple[str, Manifest]]:
    return [(name, o) for name, render in RENDERINGS.items() for o in render()]


def containers(manifest: Manifest) -> list[Manifest]:
    template = manifest.get("spec", {}).get("template", {})
    found: list[Manifest] = template.get("spec", {}).get("containers", [])
    return found


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def command_line(container: Manifest) -> list[str]:
    """command + args with every $(VAR) replaced by its sample; each VAR in the env."""
    defined = {e["name"] for e in container.get("env", [])}
    words = [*container["command"], *container.get("args", [])]
    referenced = {m for w in words for m in REFERENCE.findall(w)}
    assert referenced <= defined, f"{container['name']}: undefined {referenced - defined}"
    return [REFERENCE.sub(lambda m: SAMPLES[m.group(1)], str(w)) for w in words]


def parse(args: list[str]) -> click.Context:
    """Parse ``args`` down the ``ha-sc`` command tree as click would, without running."""
    ctx = cli.make_context("ha-sc", list(args))
    command: click.Command = cli
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    return ctx


def option(args: list[str], flag: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")]
    assert len(values) == 1, f"{flag} in {args}"
    return values[0]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.parametrize(("rendering", "manifest"), all_objects())
def test_every_object_is_valid_against_the_kubernetes_schemas(
    rendering: str, manifest: Manifest
) -> None:
    kubernetes_validate.validate(manifest, VERSION, strict=True)


def test_the_validation_can_fail() -> None:
    statefulset = copy.deepcopy(find(base(), "StatefulSet", "ha-sc-sc"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "pathh"
    ] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, VERSION, strict=True)


@pytest.mark.parametrize(
    ("rendering", "container"),
    [(name, c) for name, o in all_objects() for c in containers(o)],
    ids=lambda v: v if isinstance(v, str) else v["name"],
)
def test_every_container_command_line_is_accepted_by_the_parser(
    rendering: str, container: Manifest
) -> None:
    args = command_line(container)
    assert args[0] == "ha-sc"
    parse(args[1:])


def test_the_parser_check_can_fail() -> None:
    with pytest.raises(click.UsageError):
        parse(["spu", "run", "--id=$(SPU_ID)"])


def etcd_client_secret(directory: Path) -> Path:
    """What the etcd overlay's Secret ha-sc-etcd-client holds, made by a test CA."""
    ca = TestCa(directory / "ca")
    client = ca.issue("sc")
    directory.mkdir(exist_ok=True)
    for name, source in (("ca.crt", ca.cert), ("tls.crt", client.cert), ("tls.key", client.key)):
        (directory / name).write_bytes(source.read_bytes())
    return directory


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_the_sc_command_line_with_its_configmap_gives_valid_settings(
    rendering: str, tmp_path: Path
) -> None:
    """Each replica's full settings (peers, config file) pass ``--print-settings``."""
    objects = RENDERINGS[rendering]()
    settings = find(objects, "ConfigMap", "ha-sc-sc-settings")["data"]["sc.toml"]
    (tmp_path / "sc.toml").write_text(settings)
    secrets = tmp_path / "secrets"  # as the Secret's keys land, copied mode 0600
    write_secret(secrets / "raft.secret", "raft-secret-of-the-manifest-test")
    write_secret(secrets / "spu-tokens", "0 spu-0-token-of-the-manifest-test")
    write_secret(secrets / "api-tokens", "admin admin-token-of-the-manifest-test")
    etcd_client = etcd_client_secret(tmp_path / "etcd")
    container = containers(find(objects, "StatefulSet", "ha-sc-sc"))[0]
    for ordinal in range(find(objects, "StatefulSet", "ha-sc-sc")["spec"]["replicas"]):
        SAMPLES["POD_NAME"] = f"ha-sc-sc-{ordinal}"
        try:
            args = command_line(container)[1:]
        finally:
            SAMPLES["POD_NAME"] = "ha-sc-sc-0"
        args = [
            a.replace("/etc/ha-sc/sc.toml", str(tmp_path / "sc.toml"))
            .replace(SECRETS, str(secrets))
            .replace("/etc/ha-sc-etcd", str(etcd_client))
            for a in args
        ]
        result = CliRunner().invoke(cli, [*args, "--print-settings"])
        assert result.exit_code == 0, result.output


def test_sc_probes_and_scrape_port_match_the_served_routes() -> None:
    statefulset = find(base(), "StatefulSet", "ha-sc-sc")
    container = containers(statefulset)[0]
    public = port_of(option(command_line(container), "--public-address"))
    routes = {(method, path) for method, path, _ in ROUTES}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": public}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": public}
    assert {("GET", "/readyz"), ("GET", "/healthz")} <= routes
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == public
    assert annotations["prometheus.io/path"] == METRICS_PATH  # served by create_app


def test_spu_scrape_annotation_names_its_metrics_address() -> None:
    statefulset = find(base(), "StatefulSet", "ha-sc-spu")
    args = command_line(containers(statefulset)[0])
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port_of(option(args, "--metrics-address"))
    assert annotations["prometheus.io/path"] == METRICS_PATH


def test_sc_services_peers_and_budget_fit_the_statefulset() -> None:
    objects = base()
    statefulset = find(objects, "StatefulSet", "ha-sc-sc")
    container = containers(statefulset)[0]
    args = command_line(container)
    replicas = statefulset["spec"]["replicas"]
    assert replicas == 3
    headless = find(objects, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    for service in (headless, find(objects, "Service", "ha-sc-sc")):
        assert service["spec"]["selector"].items() <= pod_labels.items()
    peers = sorted(a.split("=", 1)[1] for a in args if a.startswith("--raft-peer="))
    domain = headless["metadata"]["name"]
    raft = port_of(option(args, "--raft-address"))
    assert peers == [f"ha-sc-sc-{i}.{domain}:{raft}" for i in range(replicas)]
    assert option(args, "--raft-address") == f"ha-sc-sc-0.{domain}:{raft}"
    container_ports = {p["containerPort"] for p in container["ports"]}
    assert {raft, port_of(option(args, "--public-address"))} <= container_ports
    assert {p["port"] for p in headless["spec"]["ports"]} <= container_ports
    budget = find(objects, "PodDisruptionBudget", "ha-sc-sc")
    assert budget["spec"]["minAvailable"] == replicas // 2 + 1  # a majority
    anti = statefulset["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "kubernetes.io/hostname"
    )
    spu = containers(find(objects, "StatefulSet", "ha-sc-spu"))[0]
    sc_private = [a.split("=", 1)[1] for a in command_line(spu) if a.startswith("--sc-private=")]
    private = port_of(option(args, "--private-address"))
    assert sc_private == [f"ha-sc-sc-{i}.{domain}:{private}" for i in range(replicas)]


def test_the_manifests_name_the_image_the_dockerfile_builds() -> None:
    dockerfile = (KUBERNETES.parent / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["ha-sc"]' in dockerfile
    images = {c["image"] for o in base() for c in containers(o)}
    assert images == {"ha-sc:0.1.0"}


def allowed_sources(policy: Manifest, port: int) -> list[dict[str, Any]] | None:
    """The peers a NetworkPolicy admits on ``port``: None for everyone, else the list."""
    sources: list[dict[str, Any]] = []
    for rule in policy["spec"]["ingress"]:
        if port in {p["port"] for p in rule.get("ports", [])}:
            if "from" not in rule:
                return None
            sources.extend(rule["from"])
    return sources


def test_network_policies_keep_the_raft_and_replication_ports_to_their_peers() -> None:
    objects = base()
    sc_args = command_line(containers(find(objects, "StatefulSet", "ha-sc-sc"))[0])
    spu_args = command_line(containers(find(objects, "StatefulSet", "ha-sc-spu"))[0])
    sc_policy = find(objects, "NetworkPolicy", "ha-sc-sc")
    spu_policy = find(objects, "NetworkPolicy", "ha-sc-spu")
    sc_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ha-sc-sc"}}}
    spu_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "ha-sc-spu"}}}
    assert allowed_sources(sc_policy, port_of(option(sc_args, "--raft-address"))) == [sc_pods]
    private = allowed_sources(sc_policy, port_of(option(sc_args, "--private-address")))
    assert private is not None and sorted(map(str, private)) == sorted(
        map(str, [sc_pods, spu_pods])
    )
    assert allowed_sources(sc_policy, port_of(option(sc_args, "--public-address"))) is None
    assert allowed_sources(spu_policy, port_of(option(spu_args, "--private"))) == [spu_pods]
    assert allowed_sources(spu_policy, port_of(option(spu_args, "--public"))) is None
    assert allowed_sources(spu_policy, port_of(option(spu_args, "--metrics-address"))) is None


def flags(args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)


def filled_by_init(template: Manifest, container: Manifest) -> bool:
    """The container mounts SECRETS from a memory volume that an init container
    writes (copying the Secret's files mode 0600)."""
    spec = template["spec"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == SECRETS]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    return volume.get("emptyDir", {}).get("medium") == "Memory" and any(
        m["name"] == mount["name"] and "install -m 0600" in " ".join(i["command"])
        for i in spec.get("initContainers", [])
        for m in i["volumeMounts"]
    )


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_command_line_proves_its_identity_with_secret_files(rendering: str) -> None:
    """No unauthenticated Raft; the SCs check SPU and API tokens, the SPUs and the
    registration Job send theirs, all from files in the memory volume."""
    objects = RENDERINGS[rendering]()
    sc = find(objects, "StatefulSet", "ha-sc-sc")
    sc_args = command_line(containers(sc)[0])
    assert "--allow-unauthenticated-raft" not in sc_args
    wanted = {"--spu-tokens", "--api-tokens"}
    if rendering == "base":
        wanted.add("--raft-secret-file")
    assert {f: v for f, v in flags(sc_args).items() if f in wanted} == {
        f: f"{SECRETS}/{f.removeprefix('--').replace('raft-secret-file', 'raft.secret')}"
        for f in wanted
    }
    assert filled_by_init(sc["spec"]["template"], containers(sc)[0])
    spu = find(objects, "StatefulSet", "ha-sc-spu")
    assert flags(command_line(containers(spu)[0]))["--token-file"] == f"{SECRETS}/spu.token"
    assert filled_by_init(spu["spec"]["template"], containers(spu)[0])
    job = find(objects, "Job", "ha-sc-spu-register")
    for container in containers(job):
        assert flags(command_line(container))["--token-file"] == f"{SECRETS}/admin.token"
        assert filled_by_init(job["spec"]["template"], container)
