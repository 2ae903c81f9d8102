"""Procedurally generated scenes of simple shapes, with exact instance masks.

The bundled ``shapes`` model is trained and evaluated on these scenes, and the notebooks
use them as their offline images: the model knows shapes, not photos. A scene is fully
determined by its seed and size.

Example:
    >>> import samkit
    >>> scene = samkit.shapes.make_scene(seed=7, height=480, width=640)
    >>> scene.image.shape, scene.image.dtype
    ((480, 640, 3), dtype('uint8'))
    >>> scene.masks.shape[1:], scene.xyxy.shape[1]
    ((480, 640), 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv

#: The kinds of shape a scene can hold.
SHAPE_KINDS: tuple[str, ...] = ("rectangle", "ellipse", "triangle", "polygon")

_MIN_SIDE = 32
_MAX_SIDE = 4096
_MAX_SHAPES = 6
_MAX_SIZE = 0.5

#: The smallest shape, as a fraction of the image's short side. The bundled model sees
#: a 24x24 grid of 16-pixel patches, so much smaller shapes fall within a patch or two.
DEFAULT_MIN_SIZE = 0.14


@dataclass(frozen=True)
class Scene:
    """One generated scene.

    Attributes:
        image: RGB image, a numpy array of shape `(H, W, 3)` and dtype uint8.
        masks: The visible part of each shape (what is hidden by shapes on top of it is
            removed), a boolean numpy array of shape `(N, H, W)`, bottom shape first.
        xyxy: The box of each visible mask, a float32 numpy array of shape `(N, 4)`,
            `[x_min, y_min, x_max, y_max]` in pixels (max inclusive, as
            ``supervision.mask_to_xyxy``).
        kinds: The kind of each shape, one of ``SHAPE_KINDS``.
        seed: The seed that produced the scene.
    """

    image: npt.NDArray[np.uint8]
    masks: npt.NDArray[np.bool_]
    xyxy: npt.NDArray[np.float32]
    kinds: tuple[str, ...]
    seed: int

    def __len__(self) -> int:
        return len(self.kinds)

    @property
    def areas(self) -> npt.NDArray[np.int64]:
        """The pixel count of each visible mask, shape `(N,)`."""
        return self.masks.reshape(len(self.kinds), -1).sum(axis=1).astype(np.int64)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int in [{low}, {high}], but got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], but got {value}")
    return int(value)


def _random_color(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    return rng.uniform(0, 255, size=3).astype(np.float32)


def _color_distance(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.linalg.norm(a - b))


def _texture(
    rng: np.random.Generator, height: int, width: int, strength: float
) -> npt.NDArray[np.float32]:
    """A zero-mean texture of shape `(H, W)`: stripes, checks or blurred noise."""
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:  # stripes at a random angle
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 24)
        phase = np.cos(angle) * xx + np.sin(angle) * yy
        tex = np.sin(2 * np.pi * phase / period)
    elif kind == 1:  # checks
        cell = rng.uniform(6, 20)
        tex = ((np.floor(xx / cell) + np.floor(yy / cell)) % 2) * 2.0 - 1.0
    else:  # blurred noise blobs
        small = rng.normal(0, 1, size=(max(2, height // 12), max(2, width // 12)))
        tex = cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        tex = tex / (np.abs(tex).max() + 1e-6)
    return (tex * strength).astype(np.float32)


def _background(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    c0, c1 = _random_color(rng), _random_color(rng)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    t = (t - t.min()) / (t.max() - t.min() + 1e-6)
    image = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    if rng.random() < 0.5:
        image += _texture(rng, height, width, rng.uniform(5, 25))[..., None]
    return image.astype(np.float32)


def _shape_mask(
    rng: np.random.Generator, kind: str, height: int, width: int, min_size: float
) -> npt.NDArray[np.bool_]:
    short = min(height, width)
    size = rng.uniform(min_size, _MAX_SIZE) * short
    cx = rng.uniform(0.1 * width, 0.9 * width)
    cy = rng.uniform(0.1 * height, 0.9 * height)
    angle = rng.uniform(0, 180)
    canvas = np.zeros((height, width), dtype=np.uint8)
    if kind == "rectangle":
        w, h = size * rng.uniform(0.5, 1.0), size * rng.uniform(0.5, 1.0)
        pts = cv2.boxPoints(((cx, cy), (w, h), angle))
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    elif kind == "ellipse":
        axes = (int(size * rng.uniform(0.25, 0.5)), int(size * rng.uniform(0.25, 0.5)))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, angle, 0, 360, 1, thickness=-1)
    else:
        count = 3 if kind == "triangle" else int(rng.integers(5, 9))
        base = rng.uniform(0, 2 * np.pi)
        if kind == "triangle":
            # keep every angle of the triangle reasonably open
            offsets = np.array([0.0, rng.uniform(1.6, 2.6), rng.uniform(3.7, 4.7)])
        else:
            offsets = np.linspace(0, 2 * np.pi, count, endpoint=False)
            offsets += rng.uniform(-0.25, 0.25, size=count) * (2 * np.pi / count)
        radii = size * 0.5 * rng.uniform(0.7, 1.0, size=count)
        theta = base + offsets
        pts = np.stack([cx + radii * np.cos(theta), cy + radii * np.sin(theta)], axis=1)
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return canvas.astype(bool)


def make_scene(
    seed: int,
    height: int = 480,
    width: int = 640,
    n_shapes: int | None = None,
    min_size: float = DEFAULT_MIN_SIZE,
) -> Scene:
    """Generate a scene of 1–6 simple shapes on a textured background.

    Backgrounds are gradients with optional stripes, checks or noise; shapes are
    rotated rectangles, ellipses, triangles and polygons, flat or textured, and may
    overlap: the part of a shape hidden under a later one is removed from its mask.
    Shapes left less than half visible are not drawn at all, so every mask is a
    shape a person would point at. The same arguments always give the same scene.

    Args:
        seed: Any int >= 0; it decides everything about the scene.
        height: Image height in pixels, 32 to 4096.
        width: Image width in pixels, 32 to 4096.
        n_shapes: How many shapes to try to place, 1 to 6 (random when None). Fewer
            may remain when some end up mostly hidden.
        min_size: The smallest shape's size as a fraction of the short side, in
            (0, 0.5]; sizes are drawn uniformly up to 0.5.

    Returns:
        The ``Scene``: image `(H, W, 3)` uint8, masks `(N, H, W)` bool, xyxy `(N, 4)`.

    Raises:
        ValueError: If an argument is not an int in its range.
    """
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    height = _check_int("height", height, _MIN_SIDE, _MAX_SIDE)
    width = _check_int("width", width, _MIN_SIDE, _MAX_SIDE)
    rng = np.random.default_rng(seed)
    if n_shapes is None:
        count = int(rng.integers(1, _MAX_SHAPES + 1))
    else:
        count = _check_int("n_shapes", n_shapes, 1, _MAX_SHAPES)
    if (
        isinstance(min_size, bool)
        or not isinstance(min_size, (int, float))
        or not 0 < min_size <= _MAX_SIZE
    ):
        raise ValueError(f"min_size must be a number in (0, {_MAX_SIZE}], but got {min_size!r}")

    image = _background(rng, height, width)
    background_mean = image.reshape(-1, 3).mean(axis=0)
    min_pixels = 0.004 * height * width

    kinds = [SHAPE_KINDS[int(rng.integers(0, len(SHAPE_KINDS)))] for _ in range(count)]
    full = [_shape_mask(rng, kind, height, width, float(min_size)) for kind in kinds]
    colors = _pick_colors(rng, count, background_mean)
    textured = [bool(rng.random() < 0.35) for _ in range(count)]

    keep, visible = _keep_visible(full, min_pixels)

    for i in range(count):
        if not keep[i]:
            continue
        fill = np.broadcast_to(colors[i], image.shape).copy()
        if textured[i]:
            fill += _texture(rng, height, width, rng.uniform(8, 22))[..., None]
        image[full[i]] = fill[full[i]]

    sigma = rng.uniform(0.4, 1.0)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), sigmaX=sigma), dtype=np.float32)
    image += rng.normal(0, rng.uniform(1, 8), size=image.shape).astype(np.float32)
    out = np.clip(np.round(image), 0, 255).astype(np.uint8)

    kept = [i for i in range(count) if keep[i]]
    masks = np.stack([visible[i] for i in kept]) if kept else np.zeros((0, height, width), bool)
    return Scene(
        image=out,
        masks=masks,
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32),
        kinds=tuple(kinds[i] for i in kept),
        seed=seed,
    )


def _pick_colors(
    rng: np.random.Generator, count: int, background_mean: npt.NDArray[np.float32]
) -> list[npt.NDArray[np.float32]]:
    """One colour per shape, apart from the background and from each other when it can."""
    colors: list[npt.NDArray[np.float32]] = []
    for _ in range(count):
        color = _random_color(rng)
        for _attempt in range(20):
            if _color_distance(color, background_mean) >= 90 and all(
                _color_distance(color, other) >= 70 for other in colors
            ):
                break
            color = _random_color(rng)
        colors.append(color)
    return colors


def _keep_visible(
    full: list[npt.NDArray[np.bool_]], min_pixels: float
) -> tuple[list[bool], list[npt.NDArray[np.bool_]]]:
    """Which shapes stay (large enough, at least half visible), and their visible masks."""
    keep = [bool(m.sum() >= min_pixels) for m in full]
    while True:
        visible = _visible_masks(full, keep)
        bad = [
            i
            for i in range(len(full))
            if keep[i] and (visible[i].sum() < max(min_pixels, 0.5 * full[i].sum()))
        ]
        if not bad:
            break
        keep[bad[0]] = False
    if not any(keep):  # a scene always holds at least one shape
        keep[int(np.argmax([m.sum() for m in full]))] = True
        visible = _visible_masks(full, keep)
    return keep, visible


def _visible_masks(
    full: list[npt.NDArray[np.bool_]], keep: list[bool]
) -> list[npt.NDArray[np.bool_]]:
    """Remove from each kept mask what kept masks drawn after it cover."""
    covered = np.zeros_like(full[0])
    visible: list[npt.NDArray[np.bool_]] = [np.zeros_like(m) for m in full]
    for i in range(len(full) - 1, -1, -1):
        if not keep[i]:
            continue
        visible[i] = full[i] & ~covered
        covered |= full[i]
    return visible
