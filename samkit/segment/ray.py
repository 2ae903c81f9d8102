"""The Ray engine of :func:`samkit.segment_images`: the same job on a Ray cluster.

The images still to do become a Ray Data dataset (one row per image: its path, its
``file_name``, its box prompts); ``map_batches`` runs :class:`SegmentActor`, an actor
class that loads one model when it starts and keeps it for every image it is given
(one GPU per actor when the cluster has GPUs). Each actor reads its images with
``samkit.load_image`` and writes the same per-image result files as the local engine,
so resume and ``annotations.json`` work the same; the driver only collects a small
status row per image. On a real cluster the inputs and ``--out`` must therefore be on a
filesystem every node sees at the same path.

Ray is an optional extra: ``pip install 'samkit[ray]'``.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Any

import numpy as np

from samkit.segment.spec import Failure, ImageItem, JobSpec, Report, Runner, SegmentUsageError
from samkit.segment.worker import ImageWorker

#: What to install when Ray is missing.
RAY_INSTALL_HINT = "pip install 'samkit[ray]'"


def import_ray() -> Any:
    """Import Ray, or say how to install it.

    Returns:
        The ``ray`` module.

    Raises:
        SegmentUsageError: If Ray (with Ray Data) is not installed.
    """
    try:
        import ray
        import ray.data  # Ray Data is a separate part of the ray package
    except ImportError as error:
        raise SegmentUsageError(
            f"the Ray engine needs Ray Data, which is not installed ({error}); install it with "
            f"{RAY_INSTALL_HINT}"
        ) from None
    return ray


class SegmentActor:
    """A Ray Data actor: one model, loaded once, segmenting batches of image rows.

    Args:
        spec: The job's settings, as a dict (``dataclasses.asdict(JobSpec)``).
        threads: How many CPU threads torch may use in this actor.
    """

    def __init__(self, spec: dict[str, Any], threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.worker = ImageWorker(JobSpec(**spec))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Segment every row of a batch; return a status row per image."""
        keys, reasons = [], []
        for i in range(len(batch["key"])):
            boxes = str(batch["boxes"][i])
            item = ImageItem(
                path=str(batch["path"][i]),
                file_name=str(batch["file_name"][i]),
                key=str(batch["key"][i]),
                output_stem=str(batch["output_stem"][i]),
                boxes=json.loads(boxes) if boxes else None,
            )
            failure = self.worker.process(item)
            keys.append(item.key)
            reasons.append("" if failure is None else failure.reason)
        return {"key": np.array(keys, dtype=object), "reason": np.array(reasons, dtype=object)}


def plan_actors(ray: Any, actors: int | None) -> tuple[int, float, float]:
    """How many actors (at most one per GPU, or per CPU), and what each one asks for.

    Args:
        ray: The ``ray`` module (anything with ``cluster_resources()``).
        actors: How many actors were asked for, or ``None`` for the default.

    Returns:
        ``(count, gpus, cpus)``: the actors, and the GPUs and CPUs each one asks for.
    """
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    if gpus:
        # one GPU per actor, and a CPU for reading its images
        return min(actors or gpus, gpus), 1.0, 1.0
    count = min(actors or max(1, cpus // 2), cpus)
    return count, 0.0, float(max(1, cpus // count))


def make_ray_runner(address: str | None, actors: int | None) -> Runner:
    """A runner for :func:`samkit.segment_images` that segments on Ray.

    Args:
        address: The cluster to connect to (``"auto"``, ``"ray://head:10001"``); ``None``
            uses the Ray this process already started, or starts a local one.
        actors: How many model actors to run (``None``: one per GPU of the cluster, or
            one per two CPUs when it has none); at most one per GPU, or per CPU.

    Returns:
        The runner.

    Raises:
        SegmentUsageError: If Ray is not installed, or ``actors`` is not a positive int.
    """
    ray = import_ray()
    if actors is not None and (
        not isinstance(actors, int) or isinstance(actors, bool) or actors < 1
    ):
        raise SegmentUsageError(f"ray_actors must be a positive int, but got {actors!r}")

    def run(spec: JobSpec, items: list[ImageItem], report: Report) -> None:
        if not items:
            return
        with warnings.catch_warnings():
            # Ray warns about its own deprecated settings while it sets itself up.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
            started_here = start_ray(ray, address)
            try:
                run_on_ray(ray, actors, spec, items, report)
            finally:
                if started_here:
                    ray.shutdown()

    return run


def start_ray(ray: Any, address: str | None) -> bool:
    """Start or join Ray unless this process already did; say whether it started it here.

    Raises:
        RuntimeError: If Ray cannot start or join the cluster (the results so far stay).
    """
    if ray.is_initialized():
        return False
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            configure_logging=False,
            log_to_driver=False,
        )
    except Exception as error:  # Ray raises bare Exceptions when a node cannot start
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RuntimeError(
            f"could not start or join {where}: {error}; the results done so far are "
            "kept, run the same command again to resume"
        ) from error
    return True


def item_row(item: ImageItem) -> dict[str, str]:
    """One image as a row of the dataset (strings only: its boxes as JSON, or ``""``)."""
    return {
        "path": item.path,
        "file_name": item.file_name,
        "key": item.key,
        "output_stem": item.output_stem,
        "boxes": "" if item.boxes is None else json.dumps(item.boxes),
    }


def run_on_ray(
    ray: Any, actors: int | None, spec: JobSpec, items: list[ImageItem], report: Report
) -> None:
    """Segment ``items`` with a pool of :class:`SegmentActor` on the Ray already started.

    Args:
        ray: The ``ray`` module, initialised.
        actors: How many actors were asked for, or ``None`` (see :func:`plan_actors`).
        spec: The job's settings.
        items: The images still to do (at least one).
        report: Called once per image as its status row comes back.
    """
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    count, gpus, cpus = plan_actors(ray, actors)
    rows = [item_row(item) for item in items]
    by_key = {item.key: item for item in items}
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), 200))
    results = dataset.map_batches(
        SegmentActor,
        fn_constructor_kwargs={"spec": dataclasses.asdict(spec), "threads": int(cpus)},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=count),
        num_gpus=gpus,
        num_cpus=cpus,
    )
    for row in results.iter_rows():
        item = by_key[str(row["key"])]
        reason = str(row["reason"])
        report(item, Failure(item.path, reason) if reason else None)
