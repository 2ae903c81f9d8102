import re

import numpy as np
import pytest

from samkit.shapes import SHAPE_KINDS, make_scene


@pytest.mark.parametrize(
    ("height", "width"),
    [
        (480, 640),  # landscape, the evaluation size
        (600, 400),  # portrait, the other evaluation size
        (256, 256),  # square
        (32, 32),  # the smallest allowed
        (97, 301),  # odd sizes
    ],
)
def test_scene_has_the_requested_size_and_consistent_parts(height: int, width: int) -> None:
    scene = make_scene(3, height, width)
    n = len(scene)
    assert scene.image.shape == (height, width, 3)
    assert scene.image.dtype == np.uint8
    assert scene.masks.shape == (n, height, width)
    assert scene.masks.dtype == np.bool_
    assert scene.xyxy.shape == (n, 4)
    assert scene.xyxy.dtype == np.float32
    assert len(scene.kinds) == n
    assert set(scene.kinds) <= set(SHAPE_KINDS)
    assert 1 <= n <= 6


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_masks_do_not_overlap_and_boxes_fit_them(seed: int) -> None:
    scene = make_scene(seed)
    # the occluded part is removed from the lower shape: every pixel has one owner
    assert scene.masks.sum(axis=0).max() <= 1
    for mask, (x0, y0, x1, y1) in zip(scene.masks, scene.xyxy, strict=True):
        assert mask.any()
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)
    assert np.array_equal(scene.areas, scene.masks.reshape(len(scene), -1).sum(axis=1))


def test_the_same_seed_gives_the_same_scene_and_another_seed_another() -> None:
    a, b, c = make_scene(11), make_scene(11), make_scene(12)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.masks, b.masks)
    assert a.kinds == b.kinds
    assert not np.array_equal(a.image, c.image)


def test_shapes_are_visible_in_the_image() -> None:
    # every shape differs from the background around it, or nobody could segment it
    scene = make_scene(5)
    background = ~scene.masks.any(axis=0)
    bg_mean = scene.image[background].mean(axis=0)
    for mask in scene.masks:
        assert np.abs(scene.image[mask].mean(axis=0) - bg_mean).max() > 20


@pytest.mark.parametrize("n_shapes", [1, 3, 6])
def test_n_shapes_caps_the_count(n_shapes: int) -> None:
    counts = [len(make_scene(seed, 240, 320, n_shapes=n_shapes)) for seed in range(8)]
    assert max(counts) <= n_shapes
    assert min(counts) >= 1


def test_all_kinds_appear_over_many_scenes() -> None:
    kinds = {kind for seed in range(30) for kind in make_scene(seed, 120, 160).kinds}
    assert kinds == set(SHAPE_KINDS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # a negative seed
        ({"seed": -1}, "seed must be an int in [0, 9223372036854775807], but got -1"),
        # a float seed
        ({"seed": 1.5}, "seed must be an int in [0, 9223372036854775807], but got 1.5"),
        # a bool is not a seed
        ({"seed": True}, "seed must be an int in [0, 9223372036854775807], but got True"),
        # too small an image
        ({"seed": 0, "height": 16}, "height must be an int in [32, 4096], but got 16"),
        # a width given as a string
        ({"seed": 0, "width": "640"}, "width must be an int in [32, 4096], but got '640'"),
        # zero shapes
        ({"seed": 0, "n_shapes": 0}, "n_shapes must be an int in [1, 6], but got 0"),
        # too many shapes
        ({"seed": 0, "n_shapes": 7}, "n_shapes must be an int in [1, 6], but got 7"),
        # a zero minimum size
        ({"seed": 0, "min_size": 0}, "min_size must be a number in (0, 0.5], but got 0"),
        # a minimum size above the maximum
        ({"seed": 0, "min_size": 0.6}, "min_size must be a number in (0, 0.5], but got 0.6"),
    ],
)
def test_bad_arguments_say_what_was_expected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_scene(**kwargs)  # type: ignore[arg-type]


def test_min_size_makes_shapes_bigger() -> None:
    small = [make_scene(seed, 240, 320, n_shapes=1, min_size=0.05).areas[0] for seed in range(10)]
    big = [make_scene(seed, 240, 320, n_shapes=1, min_size=0.45).areas[0] for seed in range(10)]
    assert min(big) > 0.2 * 240 * 0.45 * 240 * 0.45
    assert np.mean(big) > np.mean(small)
