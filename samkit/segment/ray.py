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

import contextlib
import dataclasses
import json
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from samkit.segment.spec import (
    Engine,
    Failure,
    ImageItem,
    JobSpec,
    Report,
    Run,
    SegmentUsageError,
)
from samkit.segment.worker import ImageWorker

#: What to install when Ray is missing.
RAY_INSTALL_HINT = "pip install 'samkit[ray]'"

#: Seconds to reach and join a cluster given by ``--ray-address`` before giving up
#: (Ray itself retries an unreachable address for ever).
RAY_CONNECT_TIMEOUT_S = 60.0


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


def make_ray_engine(
    address: str | None, actors: int | None, timeout: float | None = None
) -> Engine:
    """An engine for :func:`samkit.segment_images` that segments on Ray.

    Args:
        address: The cluster to connect to (``"auto"``, ``"ray://head:10001"``); ``None``
            uses the Ray this process already started, or starts a local one.
        actors: How many model actors to run (``None``: one per GPU of the cluster, or
            one per two CPUs when it has none); at most one per GPU, or per CPU.
        timeout: Seconds to reach and join the cluster at ``address`` (default
            :data:`RAY_CONNECT_TIMEOUT_S`).

    Returns:
        The engine: entering it joins (or starts) Ray, leaving it stops a Ray it started.

    Raises:
        SegmentUsageError: If Ray is not installed, or ``actors`` is not a positive int.
    """
    ray = import_ray()
    if actors is not None and (
        not isinstance(actors, int) or isinstance(actors, bool) or actors < 1
    ):
        raise SegmentUsageError(f"ray_actors must be a positive int, but got {actors!r}")

    @contextlib.contextmanager
    def start(spec: JobSpec) -> Iterator[Run]:
        with warnings.catch_warnings():
            # Ray warns about its own deprecated settings while it sets itself up.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
            deadline = RAY_CONNECT_TIMEOUT_S if timeout is None else timeout
            started_here = start_ray(ray, address, deadline)
            try:
                yield lambda items, report: run_on_ray(ray, actors, spec, items, report)
            finally:
                if started_here:
                    ray.shutdown()

    return start


def host_and_port(address: str) -> tuple[str, int] | None:
    """The host and port of a Ray address (``ray://host:port`` or ``host:port``), if any.

    Example:
        ```pycon
        >>> host_and_port("ray://head:10001"), host_and_port("auto")
        (('head', 10001), None)

        ```
    """
    rest = address.removeprefix("ray://")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def reach(address: str, timeout: float) -> None:
    """Check that something listens at a Ray address, within ``timeout`` seconds.

    Raises:
        SegmentUsageError: If the host cannot be resolved or reached, or refuses.
    """
    target = host_and_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or str(error)
        raise SegmentUsageError(
            f"cannot reach the Ray cluster at {address} ({target[0]} port {target[1]}: "
            f"{reason}, within {timeout:g} s): check --ray-address (the head node's address, "
            "such as ray://head:10001) and that the cluster is running; nothing was written "
            "to --out"
        ) from None


def start_ray(ray: Any, address: str | None, timeout: float = RAY_CONNECT_TIMEOUT_S) -> bool:
    """Start or join Ray unless this process already did; say whether it started it here.

    Joining a cluster has a deadline of ``timeout`` seconds; starting a local Ray has none.

    Raises:
        SegmentUsageError: If the cluster at ``address`` cannot be reached or joined in
            time (nothing has been written yet).
        RuntimeError: If a local Ray cannot start.
    """
    if ray.is_initialized():
        return False
    outcome: dict[str, Exception] = {}

    def init() -> None:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                configure_logging=False,
                log_to_driver=False,
            )
        except Exception as error:  # Ray raises bare Exceptions when a node cannot start
            outcome["error"] = error

    if address is None:
        init()
    else:
        reach(address, timeout)
        joining = threading.Thread(target=init, name="samkit-ray-init", daemon=True)
        joining.start()
        joining.join(timeout)
        if joining.is_alive():
            raise SegmentUsageError(
                f"could not join the Ray cluster at {address} within {timeout:g} s (something "
                "answers there, but no Ray cluster joined): check --ray-address and that the "
                "cluster is running; nothing was written to --out"
            )
    if "error" in outcome:
        error = outcome["error"]
        if address is not None:
            raise SegmentUsageError(
                f"could not join the Ray cluster at {address}: {error}; nothing was written "
                "to --out"
            ) from error
        raise RuntimeError(f"could not start a local Ray: {error}") from error
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
