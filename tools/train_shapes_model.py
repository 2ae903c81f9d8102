# longer than 400 lines because the recipe, its data, its loss and the two-process loop
# are one deterministic training run, read top to bottom.
"""Train the bundled ``shapes`` model: SAM's architecture, scaled down, on generated scenes.

Deterministic: the same arguments on the same kind of machine give the same checkpoint
(fixed seeds, one thread per training process, deterministic torch algorithms; with
``--procs 2`` two processes, one per core, average their gradients). The recipe is
SAM's: box and point prompts sampled from the ground-truth masks, focal + dice loss on
the masks (20:1), mean squared error between the IoU head and the real IoU, the best of
the three outputs for ambiguous single points, and a round of corrective clicks that
also feeds the previous mask logits back as ``mask_input``.

The defaults are the shipped recipe (:class:`Recipe`), the run that made
``data/models/sam_shapes.pt`` and its record ``data/models/sam_shapes.json``. Global
torch settings that training changes (threads, denormal flush, deterministic
algorithms, the default random generator) are put back when it ends.

Usage (from the repository root):
    python -m tools.train_shapes_model               # the shipped recipe (make shapes-model)
    python -m tools.train_shapes_model --steps 200   # any field of Recipe, as --flag
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as torch_mp
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from samkit.files import atomic_write
from samkit.model import SHAPES_CONFIG, ShapesConfig, build_shapes_sam, read_state_dict
from samkit.shapes import DEFAULT_MIN_SIZE, Scene, make_scene

THREADS = 1
TRAIN_SEED_OFFSET = 1_000_000_000  # training scenes never overlap evaluation seeds


def sigmoid_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask focal loss (gamma 2, no alpha weighting), averaged over pixels: shape (K,)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** 2
    return loss.flatten(1).mean(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask dice loss: shape (K,)."""
    prob = logits.sigmoid().flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return 1 - (2 * inter + 1) / (prob.sum(1) + target.sum(1) + 1)


FOCAL_WEIGHT = 20.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training run. The defaults are the shipped one, recorded in
    ``data/models/sam_shapes.json``: ``make shapes-model`` runs them unchanged.

    The fields up to ``config`` decide the checkpoint's bytes (and are written to its
    record); ``out``, ``data_workers``, ``log_every`` and ``snapshot_dir`` do not.
    """

    steps: int = dataclasses.field(default=5000, metadata={"help": "training steps"})
    batch: int = dataclasses.field(default=4, metadata={"help": "images per step"})
    procs: int = dataclasses.field(
        default=2,
        metadata={
            "help": "training processes (one per core): each takes batch/procs images of "
            "every step and the gradients are averaged; the checkpoint depends on it"
        },
    )
    max_masks: int = dataclasses.field(default=6, metadata={"help": "masks per image per step"})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    warmup: int = dataclasses.field(
        default=100,
        metadata={"help": "steps of linear warm-up, then cosine decay to 5%% of the peak"},
    )
    seed: int = dataclasses.field(
        default=0, metadata={"help": "seed of the scenes, the prompts and the initial weights"}
    )
    min_size: float = dataclasses.field(
        default=DEFAULT_MIN_SIZE,
        metadata={"help": "smallest shape, as a fraction of the short side"},
    )
    scene_size: int = dataclasses.field(
        default=256,
        metadata={"help": "long side of the smallest training scene (the largest is twice it)"},
    )
    focal_weight: float = dataclasses.field(
        default=FOCAL_WEIGHT, metadata={"help": "focal : dice weight of the mask loss"}
    )
    exact_boxes: float = dataclasses.field(
        default=0.0, metadata={"help": "share of box prompts left without noise"}
    )
    box_fix: int = dataclasses.field(
        default=0, metadata={"help": "also train the box plus a corrective click (1) or not (0)"}
    )
    init: Path | None = dataclasses.field(
        default=None, metadata={"help": "start from this checkpoint (fine-tuning)"}
    )
    config: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "JSON overrides of SHAPES_CONFIG, for experiments (the checkpoint then "
            "only loads with the same overrides)"
        },
    )

    out: Path = dataclasses.field(
        default=Path("data/models/sam_shapes.pt"),
        metadata={"help": "the checkpoint; its record gets the name .json"},
    )
    data_workers: int = dataclasses.field(
        default=0,
        metadata={
            "help": "processes per training process that generate the scenes ahead of the training "
            "(0: none); the checkpoint does not depend on it"
        },
    )
    log_every: int = dataclasses.field(
        default=50, metadata={"help": "print the running losses every this many steps"}
    )
    snapshot_dir: Path | None = dataclasses.field(
        default=None, metadata={"help": "also save a checkpoint every 250 steps"}
    )

    def model_config(self) -> ShapesConfig:
        """The architecture: ``SHAPES_CONFIG`` with the ``config`` overrides applied."""
        if not self.config:
            return SHAPES_CONFIG
        overrides: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(self.config).items()
        }
        return dataclasses.replace(SHAPES_CONFIG, **overrides)


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes denormal floats to zero (``torch.set_flush_denormal``)."""
    return torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item() == 0.0


@contextlib.contextmanager
def torch_settings_restored() -> Iterator[None]:
    """Put back, on exit, the global torch settings that training changes: the number
    of threads, the denormal flush, deterministic algorithms and the default random
    generator's state."""
    threads = torch.get_num_threads()
    flush = flush_denormal_enabled()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng)


def mask_loss(
    logits: torch.Tensor, target: torch.Tensor, focal_weight: float = FOCAL_WEIGHT
) -> torch.Tensor:
    """SAM's mask loss, focal : dice at focal_weight : 1 (SAM uses 20 : 1), shape (K,)."""
    return focal_weight * sigmoid_focal_loss(logits, target) + dice_loss(logits, target)


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded logits with the target, per mask: shape (K,)."""
    pred = (logits > 0).flatten(1).float()
    target = target.flatten(1)
    inter = (pred * target).sum(1)
    union = pred.sum(1) + target.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def scene_specs(seed: int, step: int, batch: int, size: int) -> list[tuple[int, int, int]]:
    """The scenes of one step, as ``(scene seed, height, width)``: the long side from 1x
    to 2x ``size``, portrait or landscape, aspect 0.55 to 1."""
    rng = np.random.default_rng([seed, step, 1])
    specs = []
    for b in range(batch):
        longest = int(rng.integers(size, 2 * size + 1))
        aspect = rng.uniform(0.55, 1.0)
        short = max(32, round(longest * aspect))
        height, width = (longest, short) if rng.random() < 0.4 else (short, longest)
        specs.append((TRAIN_SEED_OFFSET + seed * 100_000_000 + step * batch + b, height, width))
    return specs


class Scenes:
    """Generate the scenes of upcoming steps in a helper process while the model trains.

    Scene ``i`` of a step depends only on its spec, so the result is the same with or
    without the helper. ``workers=0`` generates them in this process.
    """

    def __init__(
        self,
        seed: int,
        batch: int,
        size: int,
        min_size: float,
        workers: int,
        rank: int = 0,
        procs: int = 1,
    ) -> None:
        self.seed, self.batch, self.size, self.min_size = seed, batch, size, min_size
        # each training process takes its own contiguous share of a step's scenes
        share = batch // procs
        self.part = slice(rank * share, (rank + 1) * share)
        self.pool: concurrent.futures.Executor | None = None
        if workers > 0:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=cv2.setNumThreads,
                initargs=(1,),
            )
        self.pending: dict[int, list[concurrent.futures.Future[Scene]]] = {}

    def _submit(self, step: int) -> None:
        assert self.pool is not None
        self.pending[step] = [
            self.pool.submit(make_scene, s, h, w, min_size=self.min_size)
            for s, h, w in scene_specs(self.seed, step, self.batch, self.size)[self.part]
        ]

    def get(self, step: int, steps: int) -> list[Scene]:
        """The scenes of ``step``; also starts the next two steps' scenes."""
        if self.pool is None:
            specs = scene_specs(self.seed, step, self.batch, self.size)[self.part]
            return [make_scene(s, h, w, min_size=self.min_size) for s, h, w in specs]
        for ahead in range(step, min(step + 3, steps)):
            if ahead not in self.pending:
                self._submit(ahead)
        return [future.result() for future in self.pending.pop(step)]

    def __enter__(self) -> Scenes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


class Batch:
    """One image ready for the model, with its masks and its coordinate transform."""

    def __init__(self, sam: Sam, scene: Scene) -> None:
        size = sam.image_encoder.img_size
        self.transform = ResizeLongestSide(size)
        resized = self.transform.apply_image(scene.image)
        h, w = resized.shape[:2]
        x = torch.as_tensor(resized).permute(2, 0, 1).float()
        self.input = sam.preprocess(x[None])[0]
        masks = torch.as_tensor(scene.masks[:, None].astype(np.float32))
        masks = F.interpolate(masks, (h, w), mode="area")
        masks = F.pad(masks, (0, size - w, 0, size - h))
        # The decoder's low-res logits are 4x the embedding size; soft (area) targets at
        # that size keep the sub-pixel position of each boundary.
        low_res = 4 * sam.prompt_encoder.image_embedding_size[0]
        self.masks = F.avg_pool2d(masks, size // low_res)[:, 0]  # (N, s, s) soft
        self.target = (self.masks > 0.5).float()
        self.xyxy = torch.as_tensor(
            self.transform.apply_boxes(scene.xyxy, scene.image.shape[:2]), dtype=torch.float32
        )
        self.count = len(scene)


def sample_clicks(
    region: torch.Tensor, target: torch.Tensor, rng: np.random.Generator, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per mask, uniform over ``region`` (K, s, s) in the low-res frame.

    Returns the clicks in input-image pixels, shape (K, 2) as (x, y), and their labels
    (K,): 1 where the click lands on the target, 0 where it lands off it. A mask with
    an empty region gets a click at its deepest low-res pixel instead.
    """
    points, labels = [], []
    for k in range(region.shape[0]):
        ys, xs = torch.nonzero(region[k], as_tuple=True)
        if len(xs) == 0:
            ys, xs = torch.nonzero(target[k] > 0.5, as_tuple=True)
        if len(xs) == 0:
            ys, xs = torch.tensor([target.shape[1] // 2]), torch.tensor([target.shape[2] // 2])
        i = int(rng.integers(0, len(xs)))
        y, x = int(ys[i]), int(xs[i])
        points.append(torch.tensor([(x + 0.5) * scale, (y + 0.5) * scale]))
        labels.append(int(target[k, y, x] > 0.5))
    return torch.stack(points), torch.tensor(labels, dtype=torch.int64)


def jitter_boxes(boxes: torch.Tensor, rng: np.random.Generator, exact: float = 0.0) -> torch.Tensor:
    """SAM's box noise: each side moved by N(0, 0.1 * side), at most 20 px (here 6).

    A share ``exact`` of the boxes stays tight, as a detector's or an annotation's box.
    """
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    scale = torch.stack([w, h, w, h], dim=1)
    noise = torch.as_tensor(rng.normal(0, 0.1, size=tuple(boxes.shape)), dtype=torch.float32)
    keep = torch.as_tensor(rng.random(len(boxes)) < exact)
    noise = (noise * scale).clamp(-6, 6).masked_fill(keep[:, None], 0.0)
    return boxes + noise


def decode(
    sam: Sam,
    embeddings: torch.Tensor,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    mask_input: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All four outputs of the decoder: low-res logits (K, 4, s, s) and IoU predictions.

    ``embeddings`` holds each prompt's own image embedding, (K, C, h, w), so the prompts
    of a whole batch of images go through the stock ``MaskDecoder.predict_masks`` in one
    call: it adds the image embedding to the dense prompt embedding, so a zero image
    embedding and ``dense + embeddings`` give exactly the per-image result.
    """
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
    low_res, iou_pred = sam.mask_decoder.predict_masks(
        image_embeddings=embeddings.new_zeros((1, *embeddings.shape[1:])),
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense + embeddings,
    )
    return low_res, iou_pred


@dataclasses.dataclass(frozen=True)
class _Chosen:
    """The shapes a batch trains on, one row each, and what their losses compare with."""

    embedding: torch.Tensor
    target: torch.Tensor
    soft: torch.Tensor
    boxes: torch.Tensor
    scale: float
    focal_weight: float

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        return mask_loss(logits, self.soft, self.focal_weight)

    def iou_loss(self, logits: torch.Tensor, iou_pred: torch.Tensor) -> torch.Tensor:
        real = torch.stack([hard_iou(logits[:, j], self.target) for j in range(4)], dim=1)
        return F.mse_loss(iou_pred, real)


def _choose(
    sam: Sam,
    embeddings: torch.Tensor,
    items: list[Batch],
    rng: np.random.Generator,
    max_masks: int,
    focal_weight: float,
    exact_boxes: float,
) -> _Chosen:
    """Up to ``max_masks`` shapes per image, and their boxes with noise."""
    chosen = [torch.as_tensor(rng.permutation(item.count)[:max_masks]) for item in items]
    image = torch.cat([torch.full((len(c),), b) for b, c in enumerate(chosen)])
    target = torch.cat([item.target[c] for item, c in zip(items, chosen, strict=True)])
    soft = torch.cat([item.masks[c] for item, c in zip(items, chosen, strict=True)])
    xyxy = torch.cat([item.xyxy[c] for item, c in zip(items, chosen, strict=True)])
    embedding = embeddings[image]
    scale = sam.image_encoder.img_size / target.shape[-1]
    boxes = jitter_boxes(xyxy, rng, exact_boxes)
    return _Chosen(embedding, target, soft, boxes, scale, focal_weight)


def batch_loss(
    sam: Sam,
    embeddings: torch.Tensor,
    items: list[Batch],
    rng: np.random.Generator,
    max_masks: int,
    focal_weight: float = FOCAL_WEIGHT,
    exact_boxes: float = 0.0,
    box_fix: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """All prompts for a batch of images, in one decoder call per kind of prompt: box,
    single point, and one corrective round after the point (and, with ``box_fix``, after
    the box). Up to ``max_masks`` shapes per image; every chosen shape weighs the same.

    The shipped checkpoint's loss: its parts run, and draw from ``rng``, in this order."""
    batch = _choose(sam, embeddings, items, rng, max_masks, focal_weight, exact_boxes)
    stats: dict[str, float] = {}
    low_b, total = _box_loss(sam, batch, stats)
    total = _point_losses(sam, batch, rng, total, stats)
    if not box_fix:
        return total, stats
    return _box_fix_loss(sam, batch, rng, low_b, total), stats


def _box_loss(
    sam: Sam, batch: _Chosen, stats: dict[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The box prompt: the single-mask output and the best of the three learn."""
    low_b, iou_b = decode(sam, batch.embedding, None, batch.boxes, None)
    losses_b = torch.stack([batch.loss(low_b[:, j]) for j in range(4)], dim=1)
    total = losses_b[:, 0].mean() + losses_b[:, 1:].min(dim=1).values.mean()
    total = total + batch.iou_loss(low_b, iou_b)
    stats["box_iou"] = float(hard_iou(low_b[:, 0], batch.target).mean())
    return low_b, total


def _point_losses(
    sam: Sam,
    batch: _Chosen,
    rng: np.random.Generator,
    total: torch.Tensor,
    stats: dict[str, float],
) -> torch.Tensor:
    """One positive point (ambiguous, so only the best of the three outputs learns), then
    a corrective click on its error, with its logits as mask_input; added to ``total``."""
    target, rows = batch.target, torch.arange(len(batch.target))
    positive = target > 0.5
    pts, lbl = sample_clicks(positive, target, rng, batch.scale)
    low_p, iou_p = decode(sam, batch.embedding, (pts[:, None], lbl[:, None]), None, None)
    losses_p = torch.stack([batch.loss(low_p[:, j]) for j in range(1, 4)], dim=1)
    best = losses_p.argmin(dim=1) + 1
    total = total + losses_p.min(dim=1).values.mean() + batch.iou_loss(low_p, iou_p)
    stats["point_iou"] = float(hard_iou(low_p[rows, best], target).mean())

    prev = low_p[rows, best].detach()
    fix, fix_lbl = sample_clicks((prev > 0) != positive, target, rng, batch.scale)
    pts2 = torch.stack([pts, fix], dim=1)
    lbl2 = torch.stack([lbl, fix_lbl], dim=1)
    low_c, iou_c = decode(sam, batch.embedding, (pts2, lbl2), None, prev[:, None])
    total = total + batch.loss(low_c[:, 0]).mean() + batch.iou_loss(low_c, iou_c)
    stats["corrected_iou"] = float(hard_iou(low_c[:, 0], target).mean())
    return total


def _box_fix_loss(
    sam: Sam, batch: _Chosen, rng: np.random.Generator, low_b: torch.Tensor, total: torch.Tensor
) -> torch.Tensor:
    """The box plus a corrective click, with the box's logits as mask_input."""
    prev_b = low_b[:, 0].detach()
    wrong = (prev_b > 0) != (batch.target > 0.5)
    fix_b, fix_b_lbl = sample_clicks(wrong, batch.target, rng, batch.scale)
    low_bc, iou_bc = decode(
        sam, batch.embedding, (fix_b[:, None], fix_b_lbl[:, None]), batch.boxes, prev_b[:, None]
    )
    return total + batch.loss(low_bc[:, 0]).mean() + batch.iou_loss(low_bc, iou_bc)


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def save_checkpoint(sam: Sam, out: Path) -> str:
    """Save the state dict in float16 to a temporary name, then rename; return sha256."""
    state = {
        k: v.detach().to(torch.float16) if v.is_floating_point() else v.detach()
        for k, v in sam.state_dict().items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # in memory, so the bytes do not depend on the file's name
    torch.save(state, buffer)
    data = buffer.getvalue()
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return hashlib.sha256(data).hexdigest()


def average_gradients(sam: Sam, world: int) -> None:
    """Average the gradients of all training processes (one gloo all-reduce).

    The sum of two floats does not depend on their order, so with two processes every
    process ends the step with the same bits, and so with the same weights.
    """
    grads = [p.grad for p in sam.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def train(
    sam: Sam,
    opt: torch.optim.Optimizer,
    scenes: Scenes,
    args: Recipe,
    rank: int = 0,
    world: int = 1,
) -> float:
    """Run the training steps; return the wall time in seconds.

    With ``world`` > 1 this is one of several processes: each takes its share of the
    step's images and its own prompts, and the gradients are averaged before the step.
    """
    start = time.time()
    running: dict[str, float] = {}
    for step in range(args.steps):
        rng = np.random.default_rng([args.seed, step] if world == 1 else [args.seed, step, rank])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        items = [Batch(sam, scene) for scene in scenes.get(step, args.steps)]
        embeddings = sam.image_encoder(torch.stack([it.input for it in items]))
        loss, stats = batch_loss(
            sam,
            embeddings,
            items,
            rng,
            args.max_masks,
            args.focal_weight,
            args.exact_boxes,
            bool(args.box_fix),
        )
        stats["loss"] = float(loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            average_gradients(sam, world)
            shared = torch.tensor([stats[key] for key in sorted(stats)], dtype=torch.float64)
            dist.all_reduce(shared)
            stats = dict(zip(sorted(stats), (shared / world).tolist(), strict=True))
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        opt.step()
        for key, value in stats.items():
            running[key] = running.get(key, 0.0) + value
        log_now = (step + 1) % args.log_every == 0 or step + 1 == args.steps
        if rank == 0 and log_now:
            n = args.log_every if (step + 1) % args.log_every == 0 else (step + 1) % args.log_every
            msg = " ".join(f"{k} {v / n:.3f}" for k, v in sorted(running.items()))
            elapsed = time.time() - start
            lr = lr_at(step, args.steps, args.lr, args.warmup)
            print(f"step {step + 1}/{args.steps} {elapsed:7.0f}s lr {lr:.2e} {msg}", flush=True)
        if log_now:
            running = {}
        if rank == 0 and args.snapshot_dir is not None and (step + 1) % 250 == 0:
            sam.eval()
            save_checkpoint(sam, args.snapshot_dir / f"step{step + 1:05d}.pt")
            sam.train()
    return time.time() - start


TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str, "Path": Path}


def parser() -> argparse.ArgumentParser:
    """The command line: one ``--flag`` per field of :class:`Recipe`, defaulting to it."""
    defaults = Recipe()
    cli = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(Recipe):
        # the annotations are strings here (postponed evaluation): "int", "Path | None", ...
        kind = TYPES[str(field.type).removesuffix(" | None")]
        extra: dict[str, Any] = {"choices": (0, 1)} if field.name == "box_fix" else {}
        cli.add_argument(
            "--" + field.name.replace("_", "-"),
            type=kind,
            default=getattr(defaults, field.name),
            help=field.metadata["help"],
            **extra,
        )
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    recipe = Recipe(**vars(cli.parse_args(argv)))
    if recipe.procs < 1 or recipe.batch % recipe.procs:
        cli.error(
            f"--batch must be a multiple of --procs (each process takes the same share); "
            f"got --batch {recipe.batch} and --procs {recipe.procs}"
        )
    return train_model(recipe)


def train_model(recipe: Recipe) -> int:
    """Train by ``recipe`` and save the checkpoint and its record; the caller's global
    torch settings are the same afterwards."""
    config = recipe.model_config()
    with torch_settings_restored():
        if recipe.procs == 1:
            return run(0, 1, recipe, config, None)
        with tempfile.TemporaryDirectory() as tmp:
            torch_mp.spawn(
                run,
                args=(recipe.procs, recipe, config, Path(tmp) / "store"),
                nprocs=recipe.procs,
                join=True,
            )
    return 0


def run(
    rank: int,
    world: int,
    args: Recipe,
    config: ShapesConfig,
    store: Path | None,
) -> int:
    """Train as process ``rank`` of ``world`` (``store``: the file that joins them);
    process 0 saves the checkpoint and its record."""
    if world > 1:
        assert store is not None
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        return _run(rank, world, args, config)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _run(rank: int, world: int, args: Recipe, config: ShapesConfig) -> int:
    """One training process: build, train, check that every process agrees, save (rank 0).

    The shipped checkpoint's run: its random draws happen in this order."""
    torch.set_num_threads(THREADS)
    # As the model grows confident, attention weights and loss terms can underflow to
    # denormal floats, which this CPU computes on up to 9x slower: treat them as zero.
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    sam, opt = _model_and_optimizer(args, config, rank)
    with Scenes(
        args.seed, args.batch, args.scene_size, args.min_size, args.data_workers, rank, world
    ) as scenes:
        wall = train(sam, opt, scenes, args, rank, world)
    sam.eval()
    if world > 1:
        # every process took the same steps, so every process holds the same weights
        flat = torch.cat([p.detach().reshape(-1) for p in sam.parameters()])
        first = flat.clone()
        dist.broadcast(first, 0)
        if not torch.equal(flat, first):
            raise RuntimeError(f"training process {rank} ended with other weights than process 0")
    if rank == 0:
        _save_run(sam, args, config, wall)
    return 0


def _model_and_optimizer(
    args: Recipe, config: ShapesConfig, rank: int
) -> tuple[Sam, torch.optim.Optimizer]:
    """The model (fresh from the seed, or ``args.init``) in training mode, and AdamW."""
    sam = build_shapes_sam(config)
    if args.init is not None:
        sam.load_state_dict(read_state_dict(args.init))  # float16 is cast on copy
    sam.train()
    if rank == 0:
        params = sum(p.numel() for p in sam.parameters())
        print(f"shapes model: {params / 1e6:.2f} M parameters, config {config}", flush=True)
    decay = [p for n, p in sam.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in sam.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.999),
    )
    return sam, opt


def _save_run(sam: Sam, args: Recipe, config: ShapesConfig, wall: float) -> None:
    """The checkpoint, and beside it (atomically) the JSON record of how it was made."""
    digest = save_checkpoint(sam, args.out)
    init_sha = None if args.init is None else hashlib.sha256(args.init.read_bytes()).hexdigest()
    meta = {
        "model_type": "shapes",
        "config": dataclasses.asdict(config),
        "parameters": sum(p.numel() for p in sam.parameters()),
        "seed": args.seed,
        "min_size": args.min_size,
        "scene_size": args.scene_size,
        "init": None if args.init is None else args.init.name,
        "init_sha256": init_sha,
        "steps": args.steps,
        "batch": args.batch,
        "procs": args.procs,
        "max_masks": args.max_masks,
        "lr": args.lr,
        "warmup": args.warmup,
        "focal_weight": args.focal_weight,
        "exact_boxes": args.exact_boxes,
        "box_fix": args.box_fix,
        "threads": THREADS,
        "wall_time_s": round(wall, 1),
        "sha256": digest,
        "bytes": args.out.stat().st_size,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    atomic_write(args.out.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    print(f"saved {args.out} ({meta['bytes']} bytes) sha256 {digest} in {wall:.0f}s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
