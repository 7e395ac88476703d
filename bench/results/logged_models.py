"""Trained networks as MLflow models, so that ``mlflow.pytorch.load_model("runs:/<id>/model")``, the
model registry and the runs table's Models column work on what bench trained.

A network is logged from its bench checkpoint (:mod:`bench.training.checkpoint`) in eval mode, in
MLflow's ``pt2`` form (``torch.export``: a graph and its weights, no pickled Python code, as bench's
own checkpoints hold none), with an input signature ``(B, C, H, W)`` float32 (any batch, the
trained size), an input example, and bench's resolved config and record (recipe, data, split,
test figures) as the model's metadata. Where re-parameterisation changes the network (RepVGG,
multi-branch blocks), the deploy form is logged beside it as ``model_deploy``. A network that
``torch.export`` cannot capture keeps its checkpoint as a plain artifact, and the run says why.
"""
from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch
from torch import nn

from ..core.errors import BenchError

if TYPE_CHECKING:  # types only: tracking imports this module without loading the builders
    from ..arch.config import Architecture

MODEL = "model"  # the artifact name of a run's (first) network: runs:/<id>/model
DEPLOY = "model_deploy"
EXAMPLE_BATCH = 2  # an example of one image would fix the batch at 1 in the exported graph


def model_name(label: str, first: bool) -> str:
    """``model`` for a run's first network; ``model_seed_1``, ``model_fold_2_seed_0`` for the others."""
    return MODEL if first else f"{MODEL}_{label.replace('/', '_')}"


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """MLflow's fluent API pointed at ``uri`` for the block (``log_model`` has no client form).
    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in the environment, which bench's
    own options read: both are put back as they were, unset included."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous, environment = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if environment is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = environment


def log_checkpoint(client, tracking_uri: str, experiment_id: str, run_id: str, checkpoint: Path, size: int,
                   name: str = MODEL, deploy_form: bool = True) -> dict[str, str]:
    """Log the network of ``checkpoint`` as the MLflow model ``name`` of run ``run_id`` (and its deploy
    form, where it differs and ``deploy_form``); returns ``{name: models:/ URI}``, or ``{}`` where
    ``torch.export`` cannot capture the network (then the checkpoint is uploaded as a plain artifact
    ``<name>/model.pt`` and the run tagged ``bench.model`` with the reason).

    Raises:
        BenchError: the checkpoint cannot be read (see :func:`bench.training.checkpoint.load_checkpoint`).
    """
    from ..arch.reparameterize import deploy
    from ..training.checkpoint import load_checkpoint

    model, arch, record = load_checkpoint(checkpoint)
    forms = {name: model}
    if deploy_form:
        deployed = deploy(copy.deepcopy(model))
        if _params(deployed) != _params(model):
            forms[DEPLOY if name == MODEL else f"{name}_deploy"] = deployed
    uris = {}
    for form_name, network in forms.items():
        try:
            uris[form_name] = _log(client, tracking_uri, experiment_id, run_id, network, form_name, arch, record, size,
                                   deployed=form_name != name)
        except Exception as exc:  # torch.export's failures take many types
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            client.set_tag(run_id, f"bench.{form_name}", f"not logged as an MLflow model (torch.export: {reason})")
            if form_name == name:
                client.log_artifact(run_id, str(checkpoint), form_name)
    return uris


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _log(client, tracking_uri: str, experiment_id: str, run_id: str, model: nn.Module, name: str, arch: "Architecture",
         record: dict[str, Any], size: int, deployed: bool) -> str:
    import mlflow
    from mlflow.models import infer_signature

    model = model.eval().cpu()
    # two decimals: the example is stored twice as JSON text, and a 256 px one would take megabytes
    example = torch.rand(EXAMPLE_BATCH, int(arch.config["in_channels"]), size, size,
                         generator=torch.Generator().manual_seed(0)).round(decimals=2)
    with torch.no_grad():
        output = model(example)
    metadata = {"bench": {"name": arch.name, "config": arch.config, "record": _plain(record), "form":
                          "deploy" if deployed else "training", "input_size": size}}
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                        tags={"bench.form": metadata["bench"]["form"], "bench.architecture": arch.name})
    with tracking_at(tracking_uri):
        info = mlflow.pytorch.log_model(
            model, name=name, model_id=logged.model_id, signature=infer_signature(example.numpy(), output.numpy()),
            input_example=example.numpy(), metadata=metadata, serialization_format="pt2",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
    return info.model_uri


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """The record as JSON-plain values (MLmodel is YAML)."""
    import json

    return json.loads(json.dumps(record, default=str))


class ExportedNetwork(nn.Module):
    """A network loaded from its ``torch.export`` form. Its graph was captured in eval mode and
    refuses ``train()``/``eval()``, so this wrapper keeps them from reaching it."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True) -> "ExportedNetwork":
        self.training = mode
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, K, H, W) logits."""
        return self.graph(images)


def is_model_uri(reference: str) -> bool:
    """Whether ``reference`` names an MLflow model or artifact (``runs:/``, ``models:/``)."""
    return reference.startswith(("runs:/", "models:/"))


def load_logged(uri: str, tracking_uri: Optional[str] = None) -> tuple[nn.Module, "Architecture", dict[str, Any]]:
    """The network, architecture and record of an MLflow model bench logged (``runs:/<id>/model``,
    ``models:/<name>/<version>``, ``models:/m-...``), or of a bench checkpoint logged as an artifact
    (``runs:/<id>/seed_1/model.pt``).

    Raises:
        BenchError: the URI names nothing in the store, or a model bench did not log.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    with tracking_at(tracking_uri or mlflow.get_tracking_uri()):
        try:
            if uri.endswith(".pt"):
                from ..training.checkpoint import load_checkpoint

                return load_checkpoint(Path(mlflow.artifacts.download_artifacts(uri)))
            info = mlflow.models.get_model_info(uri)
            stored = (info.metadata or {}).get("bench")
            if not isinstance(stored, dict) or "config" not in stored:
                raise BenchError(f"{uri}: not a model bench logged (its MLmodel has no bench metadata); give a "
                                 "runs:/ or models:/ URI of a bench train, compare or sweep run.")
            graph = mlflow.pytorch.load_model(uri)
        except MlflowException as exc:
            raise BenchError(f"{uri}: {str(exc).splitlines()[0][:300]} (tracking URI {mlflow.get_tracking_uri()}; "
                             "give --tracking-uri where the run was logged).") from None
    from ..arch.config import architecture_from_config

    arch = architecture_from_config(stored["config"], uri, stored.get("name"))
    return ExportedNetwork(graph), arch, stored.get("record") or {}
