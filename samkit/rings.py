"""Generated scenes of rings, frames and crescents: objects the bundled model gets wrong.

The bundled ``shapes`` model learned filled shapes of one colour each. Here the objects
have holes or bites: rings (an annulus, often with a disc of another colour in its hole,
a separate object), square frames and crescents, on gradient or textured backgrounds,
with exact instance masks. Given the box of a ring, the bundled model fills the hole or
takes the disc inside it; fine-tuning its mask decoder on a few dozen of these scenes
teaches it the hole (``samkit.finetune``). A scene is fully determined by its seed and
size, as ``samkit.shapes.make_scene``'s.

Example:
    >>> from samkit.rings import make_ring_scene
    >>> scene = make_ring_scene(seed=3, height=240, width=320)
    >>> scene.image.shape, scene.masks.shape[1:] == (240, 320)
    ((240, 320, 3), True)
    >>> set(scene.kinds) <= {"ring", "frame", "crescent", "disc"}
    True
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv

from samkit.shapes import Scene

#: The kinds of object a ring scene holds: with a hole (rings, frames), bitten
#: (crescents), and filled (discs, also inside a ring's hole, and squares), so that a
#: model must look at the hole rather than make every round object hollow.
RING_KINDS: tuple[str, ...] = ("ring", "frame", "crescent", "disc", "square")

#: How often each kind is drawn as an outer object (a ring's inner disc comes on top).
_DRAWN = ("ring", "ring", "ring", "frame", "frame", "crescent", "disc", "square")

#: The chance that a ring or a frame holds a disc in its hole.
_INNER_DISC = {"ring": 0.8, "frame": 0.5}

#: The most outer objects (rings, frames, crescents) a scene holds.
MAX_OBJECTS = 4

_MIN_SIDE = 64
_MAX_SIDE = 4096


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an int in [{_MIN_SIDE}, {_MAX_SIDE}], but got {value!r}")
    if not _MIN_SIDE <= int(value) <= _MAX_SIDE:
        raise ValueError(f"{name} must be an int in [{_MIN_SIDE}, {_MAX_SIDE}], but got {value}")
    return int(value)


def _background(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    """A two-colour gradient, half the time with stripes or checks on it: `(H, W, 3)`."""
    c0, c1 = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    t = (t - t.min()) / (t.max() - t.min() + 1e-6)
    image = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    if rng.random() < 0.5:
        period = rng.uniform(8, 24)
        if rng.random() < 0.5:
            phase = np.cos(angle) * xx + np.sin(angle) * yy
            texture = np.sin(2 * np.pi * phase / period)
        else:
            texture = ((np.floor(xx / period) + np.floor(yy / period)) % 2) * 2.0 - 1.0
        image += (texture * rng.uniform(8, 25))[..., None]
    return image.astype(np.float32)


def _color(
    rng: np.random.Generator, avoid: list[npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64]:
    """A colour at least 80 apart (RGB distance) from every colour in ``avoid``, if one is found."""
    color = rng.uniform(0, 255, size=3)
    for _ in range(50):
        if all(np.linalg.norm(color - other) >= 80 for other in avoid):
            break
        color = rng.uniform(0, 255, size=3)
    return color


def _outline(
    rng: np.random.Generator,
    kind: str,
    center: tuple[float, float],
    radius: float,
    shape: tuple[int, int],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """An object's mask and its hole (what is cut out of its filled outline), `(H, W)` each."""
    cx, cy = center
    filled = np.zeros(shape, dtype=np.uint8)
    hole = np.zeros(shape, dtype=np.uint8)
    if kind in ("frame", "square"):
        angle = rng.uniform(0, 90)
        w, h = 2 * radius * rng.uniform(0.75, 1.0), 2 * radius * rng.uniform(0.75, 1.0)
        inner = rng.uniform(0.5, 0.7) if kind == "frame" else 0.0
        for canvas, scale in ((filled, 1.0), (hole, inner))[: 2 if inner else 1]:
            corners = cv2.boxPoints(((cx, cy), (w * scale, h * scale), angle))
            cv2.fillPoly(canvas, [np.round(corners).astype(np.int32)], 1)
    elif kind == "crescent":
        cv2.circle(filled, (round(cx), round(cy)), round(radius), 1, -1)
        angle, shift = rng.uniform(0, 2 * np.pi), radius * rng.uniform(0.35, 0.6)
        bite = (round(cx + shift * np.cos(angle)), round(cy + shift * np.sin(angle)))
        cv2.circle(hole, bite, round(radius * rng.uniform(0.8, 0.95)), 1, -1)
    else:  # ring or disc
        cv2.circle(filled, (round(cx), round(cy)), round(radius), 1, -1)
        if kind == "ring":
            inner = rng.uniform(0.55, 0.72)
            cv2.circle(hole, (round(cx), round(cy)), round(radius * inner), 1, -1)
    return filled.astype(bool) & ~hole.astype(bool), filled.astype(bool) & hole.astype(bool)


def _place(
    rng: np.random.Generator, shape: tuple[int, int], taken: npt.NDArray[np.bool_]
) -> tuple[tuple[float, float], float] | None:
    """A centre and radius whose disc (with a margin) misses ``taken``; None after 30 tries."""
    height, width = shape
    yy, xx = np.ogrid[0:height, 0:width]
    for _ in range(30):
        radius = rng.uniform(0.13, 0.3) * min(height, width)
        cx = rng.uniform(radius + 2, width - radius - 2)
        cy = rng.uniform(radius + 2, height - radius - 2)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= (radius * 1.5 + 6) ** 2
        if not (disc & taken).any():
            return (cx, cy), radius
    return None


def make_ring_scene(seed: int, height: int = 480, width: int = 640) -> Scene:
    """Generate a scene of 1–4 rings, frames, crescents, discs and squares.

    Objects never overlap, so every mask is exact: a ring's mask is the annulus alone
    (its hole, and the disc that some rings hold in it, are not part of it); that disc
    is an object of its own.

    Args:
        seed: Any int >= 0; it decides everything about the scene.
        height: Image height in pixels, 64 to 4096.
        width: Image width in pixels, 64 to 4096.

    Returns:
        A ``samkit.shapes.Scene``: image `(H, W, 3)` uint8, masks `(N, H, W)` bool,
        xyxy `(N, 4)`, kinds from ``RING_KINDS``.

    Raises:
        ValueError: If an argument is not an int in its range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, but got {seed!r}")
    shape = (_check_size("height", height), _check_size("width", width))
    rng = np.random.default_rng([int(seed), 7])
    image = _background(rng, *shape)
    taken = np.zeros(shape, dtype=bool)
    masks: list[npt.NDArray[np.bool_]] = []
    kinds: list[str] = []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        placed = _place(rng, shape, taken)
        if placed is None:
            break
        center, radius = placed
        kind = _DRAWN[int(rng.integers(0, len(_DRAWN)))]
        mask, hole = _outline(rng, kind, center, radius, shape)
        taken |= mask | hole
        color = _color(rng, [image[mask].mean(axis=0)])
        image[mask] = color
        masks.append(mask)
        kinds.append(kind)
        if rng.random() < _INNER_DISC.get(kind, 0.0):
            inner = np.zeros(shape, dtype=np.uint8)
            gap = rng.uniform(0.45, 0.75) * radius * 0.5
            cv2.circle(inner, (round(center[0]), round(center[1])), round(gap), 1, -1)
            disc = inner.astype(bool) & hole
            image[disc] = _color(rng, [color, image[hole & ~disc].mean(axis=0)])
            masks.append(disc)
            kinds.append("disc")
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.4, 0.9))
    noisy = np.asarray(blurred, dtype=np.float32) + rng.normal(0, rng.uniform(1, 6), image.shape)
    out = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    stacked = np.stack(masks) if masks else np.zeros((0, *shape), dtype=bool)
    return Scene(
        image=out,
        masks=stacked,
        xyxy=sv.mask_to_xyxy(stacked).astype(np.float32).reshape(-1, 4),
        kinds=tuple(kinds),
        seed=int(seed),
    )
