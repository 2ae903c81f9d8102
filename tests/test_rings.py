from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from samkit.rings import MAX_OBJECTS, RING_KINDS, make_ring_scene


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 17, 123])
def test_scene_masks_are_exact_and_disjoint(seed: int) -> None:
    scene = make_ring_scene(seed, 240, 320)
    assert scene.image.shape == (240, 320, 3) and scene.image.dtype == np.uint8
    assert 1 <= len(scene) <= 2 * MAX_OBJECTS
    assert set(scene.kinds) <= set(RING_KINDS)
    # no pixel belongs to two objects, and every mask holds pixels
    assert scene.masks.sum(axis=0).max() == 1
    assert (scene.areas > 0).all()
    np.testing.assert_array_equal(scene.xyxy, sv.mask_to_xyxy(scene.masks).astype(np.float32))


def test_a_ring_has_a_hole_and_its_disc_sits_in_it() -> None:
    rings = [
        (scene, i)
        for seed in range(30)
        for scene in [make_ring_scene(seed, 240, 320)]
        for i, kind in enumerate(scene.kinds)
        if kind == "ring"
    ]
    assert len(rings) >= 10
    for scene, i in rings:
        x0, y0, x1, y1 = scene.xyxy[i].astype(int)
        centre = ((y0 + y1) // 2, (x0 + x1) // 2)
        assert not scene.masks[i][centre]  # the hole is not part of the ring
        if i + 1 < len(scene) and scene.kinds[i + 1] == "disc":
            assert scene.masks[i + 1][centre]  # the disc inside it is an object of its own


def test_same_seed_same_scene_and_another_seed_another() -> None:
    a, b, c = make_ring_scene(5), make_ring_scene(5), make_ring_scene(6)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.image, c.image)


def test_objects_differ_in_colour_from_what_surrounds_them() -> None:
    scene = make_ring_scene(2)
    for mask in scene.masks:
        inside = scene.image[mask].mean(axis=0)
        ring = np.zeros_like(mask)
        ys, xs = np.nonzero(mask)
        ring[max(ys.min() - 3, 0) : ys.max() + 4, max(xs.min() - 3, 0) : xs.max() + 4] = True
        assert np.linalg.norm(inside - scene.image[ring & ~mask].mean(axis=0)) > 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, r"seed must be an int >= 0, but got -1"),
        ({"seed": 1.5}, r"seed must be an int >= 0, but got 1.5"),
        ({"seed": True}, r"seed must be an int >= 0, but got True"),
        ({"seed": 0, "height": 10}, r"height must be an int in \[64, 4096\], but got 10"),
        ({"seed": 0, "width": "640"}, r"width must be an int in \[64, 4096\], but got '640'"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_ring_scene(**kwargs)  # type: ignore[arg-type]
