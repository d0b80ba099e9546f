"""examples/kubernetes/orders.yaml: the sidecar config in its ConfigMap is valid with the pod's env and
secrets, and the probes, ports, backend URLs, grace period and memory request agree with that config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kafka_sidecar._blueprint import build_blueprint

MANIFEST = Path(__file__).parents[2] / "examples/kubernetes/orders.yaml"
IDLE_RSS_MIB = 67  # measured: docs/running.md ("Resources")
URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)")


def documents() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if doc}


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == name)


def probe_url(probe: dict[str, Any]) -> tuple[int, str]:
    match = URL.search(" ".join(probe["exec"]["command"]))
    assert match is not None, probe
    return int(match.group(1)), match.group(2)


def mebibytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2])


def sidecar_blueprint(tmp_path: Path) -> Any:
    """The ConfigMap's chains.yml as the sidecar container sees it: its env, its mounted secret file."""
    kinds = documents()
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    secret = kinds["Secret"]["stringData"]
    sidecar = container(pod, "kafka-sidecar")
    env: dict[str, str] = {}
    for item in sidecar["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secret[ref["key"]] if ref else item["value"]
    text = kinds["ConfigMap"]["data"]["chains.yml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in sidecar["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" in volume:  # lay the secret's files out where the mount would put them
            folder = tmp_path / mount["mountPath"].strip("/")
            folder.mkdir(parents=True)
            for item in volume["secret"]["items"]:
                (folder / item["path"]).write_text(secret[item["key"]], encoding="utf-8")
            text = text.replace(mount["mountPath"], str(folder))
        else:
            assert volume["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
    path = tmp_path / "chains.yml"
    path.write_text(text, encoding="utf-8")
    return build_blueprint(path, env=env)


def test_the_configmap_config_is_valid_with_the_pods_env_and_secrets(tmp_path: Path) -> None:
    blueprint = sidecar_blueprint(tmp_path)
    assert blueprint.config.server.host == "127.0.0.1"
    assert blueprint.config.kafka.security.sasl_username == "orders-sidecar"
    assert [c.name for c in blueprint.consumers] == ["orders"]


def test_probes_and_ports_match_the_config(tmp_path: Path) -> None:
    config = sidecar_blueprint(tmp_path).config
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    sidecar = container(pod, "kafka-sidecar")
    port = config.server.port
    assert [p["containerPort"] for p in sidecar["ports"]] == [port]
    assert probe_url(sidecar["livenessProbe"]) == (port, "/health/live")
    assert probe_url(sidecar["startupProbe"]) == (port, "/health/live")
    assert probe_url(sidecar["readinessProbe"]) == (port, "/health/ready")
    assert pod["terminationGracePeriodSeconds"] > config.server.shutdown_timeout_s


def test_the_app_serves_what_the_reactive_consumer_calls(tmp_path: Path) -> None:
    blueprint = sidecar_blueprint(tmp_path)
    reactive = blueprint.handlers["orders-in"].config
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    app = container(pod, "app")
    app_port = int(app["args"][app["args"].index("--port") + 1])
    assert reactive.backend_url == f"http://127.0.0.1:{app_port}"
    assert probe_url(app["readinessProbe"]) == (app_port, "/health")
    assert reactive.backend_health_url == f"http://127.0.0.1:{app_port}/health"
    sidecar_url = next(e["value"] for e in app["env"] if e["name"] == "KAFKA_SIDECAR_URL")
    assert sidecar_url == f"http://127.0.0.1:{blueprint.config.server.port}"


def test_the_memory_request_covers_the_measured_idle_rss() -> None:
    pod = documents()["Deployment"]["spec"]["template"]["spec"]
    resources = container(pod, "kafka-sidecar")["resources"]
    assert mebibytes(resources["requests"]["memory"]) >= IDLE_RSS_MIB * 1.2
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])


def test_the_excerpt_in_running_md_is_taken_from_the_manifest() -> None:
    doc = (MANIFEST.parents[2] / "docs/running.md").read_text(encoding="utf-8")
    start = doc.index("        - name: kafka-sidecar")
    excerpt = doc[start : doc.index("```", start)]
    manifest = MANIFEST.read_text(encoding="utf-8")
    missing = [line for line in excerpt.splitlines() if line.strip() and line not in manifest]
    assert not missing, missing
