"""``serve_config.yaml`` is a valid Serve config whose application imports and builds from the project."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments.ingress import DEPLOYMENT_NAME, IngressArgs, deployment_options

ROOT = Path(__file__).resolve().parents[2]


def test_serve_config_validates_and_names_a_real_builder() -> None:
    raw = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config = ServeDeploySchema.model_validate(raw)
    assert config.http_options.host == "127.0.0.1"
    (app,) = config.applications
    module, _, name = app.import_path.partition(":")
    builder = getattr(importlib.import_module(module), name)
    IngressArgs.model_validate(app.args)  # the typed builder's arguments
    assert callable(builder) and app.route_prefix == "/"
    # what `serve deploy` does with the builder and the file's args: an application of our deployment
    from ray.serve import Application
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    built = call_user_app_builder_with_args_if_necessary(builder, app.args)
    assert isinstance(built, Application)
    assert built._bound_deployment.name == DEPLOYMENT_NAME
    with pytest.raises(ValueError, match="colour"):
        call_user_app_builder_with_args_if_necessary(builder, {"colour": "red"})


def test_deployment_options_come_from_the_settings() -> None:
    from cidadao.settings import load_settings

    options = deployment_options(load_settings(serve_min_replicas=2, serve_max_replicas=5, serve_replica_cpus=0.25))
    assert options["name"] == DEPLOYMENT_NAME
    assert options["autoscaling_config"]["min_replicas"] == 2 and options["autoscaling_config"]["max_replicas"] == 5
    assert options["ray_actor_options"] == {"num_cpus": 0.25}
    assert options["logging_config"]["enable_access_log"] is False


def test_haproxy_wildcard_binds_are_pinned_to_the_host() -> None:
    from deployments.haproxy_wrapper import pin_binds

    config = (
        "frontend prometheus\n    bind :9101\nlisten stats\n  bind *:8404\nfrontend http\n    bind 127.0.0.1:8000\n"
    )
    pinned = pin_binds(config, "127.0.0.1")
    assert "bind 127.0.0.1:9101" in pinned and "bind 127.0.0.1:8404" in pinned and "bind 127.0.0.1:8000" in pinned
    assert "bind :" not in pinned and "bind *:" not in pinned
