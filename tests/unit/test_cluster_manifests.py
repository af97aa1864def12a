"""``cluster.yaml`` and the KubeRay RayService parse, carry what their tools require, and name import paths
and commands that exist in the project."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import ray.autoscaler
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from cidadao.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[2]


def _commands(config: dict[str, Any]) -> list[str]:
    keys = ("setup_commands", "head_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")
    return [c for k in keys for c in config.get(k, [])]


def test_cluster_yaml_validates_against_the_launchers_schema() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["head_node_type"] in config["available_node_types"]
    worker = config["available_node_types"]["worker"]
    assert worker["min_workers"] < worker["max_workers"]  # the autoscaler has room
    assert config["file_mounts"] == {"~/cidadao": "."}


def test_the_on_prem_variant_validates_too() -> None:
    text = (ROOT / "cluster.yaml").read_text()
    block = re.search(r"# --- on premises.*?\n((?:# .*\n|#\n)+)", text)
    assert block is not None
    local = yaml.safe_load("\n".join(line[2:] for line in block.group(1).splitlines()))
    config = {**yaml.safe_load(text), **local}
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["provider"]["type"] == "local" and config["head_node_type"] in config["available_node_types"]


def test_cluster_yaml_commands_name_real_commands() -> None:
    commands = " ".join(_commands(yaml.safe_load((ROOT / "cluster.yaml").read_text())))
    assert "pip install -q -e ~/cidadao" in commands
    runner = CliRunner()
    subs = re.findall(r"/bin/cidadao ([a-z-]+)", commands)
    assert {"serve-env", "up"} <= set(subs)
    for sub in subs:
        result = runner.invoke(cli_app, [sub, "--help"])
        assert result.exit_code == 0, (sub, result.output)
    assert "cidadao serve-env" in commands and "CIDADAO_RAY_ADDRESS=auto" in commands and "cidadao up" in commands


def test_cidadao_serve_env_prints_exports_for_ray() -> None:
    result = CliRunner().invoke(cli_app, ["serve-env"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "export RAY_SERVE_ENABLE_HA_PROXY=1" in lines and all(line.startswith("export ") for line in lines)


def test_the_rayservice_carries_the_serve_config_resources_and_readiness() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "kuberay" / "rayservice.yaml").read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayService"
    serve = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    (app,) = serve.applications
    module, _, name = app.import_path.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
    cluster = manifest["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == ray.__version__
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                          "limits": {"cpu": "2000m", "memory": "2Gi"}}  # fmt: skip
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": 8000}
        assert container["envFrom"] == [{"secretRef": {"name": "cidadao-stores"}}]
    group = cluster["workerGroupSpecs"][0]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    from cidadao.settings import load_settings
    from deployments.api.app import create_app
    from deployments.api.services import StoreUrls

    paths = create_app(load_settings(), StoreUrls("postgresql://x", "redis://x")).openapi()["paths"]
    assert "/health/ready" in paths  # the probe's path is the app's
