from __future__ import annotations

import base64
import io
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import samkit


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def gradient_rgb(height: int = 6, width: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return np.stack([xx * 30, yy * 40, np.full_like(xx, 200)], axis=-1).astype(np.uint8)


def write(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


def test_load_rgb_png_round_trip(tmp_path: Path) -> None:
    rgb = gradient_rgb()
    loaded = samkit.load_image(write(Image.fromarray(rgb), tmp_path / "rgb.png"))
    assert loaded.dtype == np.uint8 and loaded.shape == (6, 8, 3)
    np.testing.assert_array_equal(loaded, rgb)


def test_load_grayscale_repeats_the_channel(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    loaded = samkit.load_image(write(Image.fromarray(gray), tmp_path / "gray.png"))
    assert loaded.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], gray)


def test_load_rgba_composites_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black: mid grey
    loaded = samkit.load_image(write(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    assert loaded.shape == (2, 3, 3)
    assert loaded[0, 0].tolist() == [10, 20, 30]
    assert loaded[0, 1].tolist() == [255, 255, 255]
    assert all(120 <= value <= 135 for value in loaded[0, 2])


def test_load_palette_with_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    path = write(palette, tmp_path / "palette.png", transparency=1)
    assert samkit.load_image(path).tolist() == [[[255, 0, 0], [255, 255, 255]]]


def test_load_16_bit_grayscale_scales_to_8_bits(tmp_path: Path) -> None:
    wide = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    path = write(Image.fromarray(wide), tmp_path / "wide.png")
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")  # really a 16-bit file
    loaded = samkit.load_image(path)
    assert loaded[:, :, 0].tolist() == [[0, 1, 128, 255]]


def test_load_jpeg_with_exif_orientation_6_is_rotated(tmp_path: Path) -> None:
    # A 40x20 (wide) picture whose left half is red, stored with orientation 6:
    # "rotate 90 degrees clockwise to display".
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = write(Image.fromarray(stored), tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = samkit.load_image(path)
    assert loaded.shape == (40, 20, 3)  # upright: tall, not wide
    # rotated clockwise, the left (red) half ends up on top
    assert loaded[5, 10, 0] > 200 and loaded[5, 10, 2] < 60
    assert loaded[35, 10, 2] > 200 and loaded[35, 10, 0] < 60


@pytest.mark.parametrize(
    ("make_path", "error", "message"),
    [
        # no such file
        (
            lambda tmp: tmp / "missing.png",
            FileNotFoundError,
            "image file not found: {tmp}/missing.png",
        ),
        # a directory
        (lambda tmp: tmp, ValueError, "{tmp} is a directory, not an image file"),
    ],
)
def test_load_image_missing_or_directory(
    tmp_path: Path, make_path: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message.format(tmp=tmp_path))):
        samkit.load_image(make_path(tmp_path))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        # text with an image's name
        (b"not an image at all", "cannot identify image file"),
        # an empty file
        (b"", "cannot identify image file"),
        # a PNG cut short
        ("truncated", "image file is truncated"),
    ],
)
def test_load_image_unreadable(tmp_path: Path, content: Any, reason: str) -> None:
    path = tmp_path / "broken.png"
    if content == "truncated":
        buffer = io.BytesIO()
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(buffer, format="PNG")
        assert len(buffer.getvalue()) > 1000
        content = buffer.getvalue()[:200]
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=f"^{re.escape(f'cannot read {path} as an image: ')}"
    ) as info:
        samkit.load_image(path)
    assert reason in str(info.value)


def decode(url: str) -> tuple[str, np.ndarray]:
    header, _, payload = url.partition(",")
    with Image.open(io.BytesIO(base64.b64decode(payload))) as opened:
        return header, np.asarray(opened.convert("RGB"))


@pytest.mark.parametrize(
    ("image_format", "header"),
    [
        # lossless by default
        (None, "data:image/png;base64"),
        # asked for JPEG
        ("jpeg", "data:image/jpeg;base64"),
    ],
)
def test_encode_array(image_format: Any, header: str) -> None:
    rgb = gradient_rgb()
    got_header, pixels = decode(samkit.encode_image(rgb, image_format=image_format))
    assert got_header == header
    if image_format is None:
        np.testing.assert_array_equal(pixels, rgb)
    else:
        assert pixels.shape == rgb.shape


@pytest.mark.parametrize(
    ("name", "header"),
    [
        # a PNG file stays PNG
        ("picture.png", "data:image/png;base64"),
        # a JPEG file stays JPEG
        ("photo.JPG", "data:image/jpeg;base64"),
    ],
)
def test_encode_path(tmp_path: Path, name: str, header: str) -> None:
    path = write(Image.fromarray(gradient_rgb()), tmp_path / name)
    got_header, pixels = decode(samkit.encode_image(path))
    assert got_header == header
    assert pixels.shape == (6, 8, 3)


def test_encode_path_is_upright_like_load_image(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = write(Image.fromarray(gradient_rgb(20, 40)), tmp_path / "phone.jpg", exif=exif)
    _, pixels = decode(samkit.encode_image(str(path)))
    assert pixels.shape == samkit.load_image(path).shape == (40, 20, 3)


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "message"),
    [
        # grayscale array
        (
            np.zeros((4, 4), np.uint8),
            {},
            ValueError,
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype uint8 and shape (4, 4)",
        ),
        # RGBA array
        (
            np.zeros((4, 4, 4), np.uint8),
            {},
            ValueError,
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype uint8 and shape (4, 4, 4)",
        ),
        # float array
        (
            np.zeros((4, 4, 3), np.float32),
            {},
            ValueError,
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype float32 and shape (4, 4, 3)",
        ),
        # empty array
        (
            np.zeros((0, 4, 3), np.uint8),
            {},
            ValueError,
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype uint8 and shape (0, 4, 3)",
        ),
        # a list
        (
            [[0, 0, 0]],
            {},
            ValueError,
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), but got list",
        ),
        # an unknown format
        (
            np.zeros((4, 4, 3), np.uint8),
            {"image_format": "gif"},
            ValueError,
            "image_format must be 'png' or 'jpeg', but got 'gif'",
        ),
        # a missing file
        ("no/such/file.png", {}, FileNotFoundError, "image file not found: no/such/file.png"),
    ],
)
def test_encode_image_bad_input(
    image: Any, kwargs: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        samkit.encode_image(image, **kwargs)


# ------------------------------------------------------------------ hostile images


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("bomb.png", "PNG"),
        ("bomb.jpg", "JPEG"),
    ],
)
def test_decompression_bomb_is_a_valueerror_with_the_pixel_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fmt: str
) -> None:
    path = write(Image.fromarray(gradient_rgb(100, 120)), tmp_path / name, format=fmt)
    # A 12,000-pixel file stands in for a bomb: the limit is lowered to 1,000 (x2 errors).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = (
        f"{path} is an image of 12,000 pixels, more than the 2,000 pixels Pillow opens: it "
        "may be a decompression bomb (a small file that expands to gigabytes of memory). "
        "If you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS first."
    )
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.load_image(path)
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.encode_image(path)


@pytest.mark.parametrize(
    "shape",
    [
        (1, 70000, 3),  # the reported case: one row, 70000 columns
        (70000, 1, 3),  # and standing up
    ],
)
def test_encode_image_of_a_1x70000_image(shape: tuple[int, int, int]) -> None:
    image = np.zeros(shape, np.uint8)
    image[..., 0] = 200
    url = samkit.encode_image(image)
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    np.testing.assert_array_equal(np.asarray(decoded), image)
    height, width = shape[:2]
    message = (
        f"JPEG holds images up to 65,500 pixels a side, but the image is {width}x{height} "
        "(width x height); use image_format='png'"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.encode_image(image, image_format="jpeg")


def test_wide_jpeg_file_is_encoded_as_png(tmp_path: Path) -> None:
    """A .jpg path picks JPEG, unless the image is too wide for JPEG."""
    path = tmp_path / "wide.jpg"
    image = np.full((1, 70000, 3), 120, np.uint8)
    Image.fromarray(image).save(tmp_path / "wide.png")
    (tmp_path / "wide.png").rename(path)  # a PNG under a .jpg name: Pillow reads it
    assert samkit.encode_image(path).startswith("data:image/png;base64,")


def _png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


_RGB = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)


class _FakeUpload:
    """What matters of an ipywidgets.FileUpload: its ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value


@pytest.mark.parametrize(
    "make_source",
    [
        # the bytes of a file
        lambda data: data,
        lambda data: bytearray(data),
        # ipywidgets 8: a tuple of dicts; content is a memoryview
        lambda data: ({"name": "a.png", "type": "image/png", "content": memoryview(data)},),
        # ipywidgets 7: a dict from the file name to a dict
        lambda data: {"a.png": {"metadata": {"name": "a.png"}, "content": data}},
        # the widget itself
        lambda data: _FakeUpload(({"name": "a.png", "content": memoryview(data)},)),
    ],
)
def test_load_image_from_bytes_and_uploads(make_source: Any) -> None:
    loaded = samkit.load_image(make_source(_png_bytes(_RGB)))
    np.testing.assert_array_equal(loaded, _RGB)


@pytest.mark.parametrize(
    "empty",
    [
        (),  # ipywidgets 8 before a file is chosen
        {},  # ipywidgets 7
        _FakeUpload(()),
    ],
)
def test_load_image_empty_upload_uses_the_default(empty: Any, tmp_path: Path) -> None:
    assert samkit.load_image(empty, default=_RGB) is _RGB
    path = write(Image.fromarray(_RGB), tmp_path / "default.png")
    np.testing.assert_array_equal(samkit.load_image(empty, default=path), _RGB)
    with pytest.raises(ValueError, match="the upload holds no file yet: pass a file path"):
        samkit.load_image(empty)


def test_load_image_none_outside_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert samkit.load_image(None, default=_RGB) is _RGB
    with pytest.raises(ValueError, match="no image was given: pass a file path"):
        samkit.load_image()


def test_load_image_none_in_colab_shows_the_upload_button(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    colab = types.ModuleType("google.colab")
    files = types.ModuleType("google.colab.files")
    files.upload = lambda: {"foto.png": _png_bytes(_RGB)}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.files", files)
    # the default is for outside Colab: in Colab the upload is read
    other = np.zeros((3, 3, 3), dtype=np.uint8)
    np.testing.assert_array_equal(samkit.load_image(default=other), _RGB)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        # two files in one upload
        (
            ({"name": "a.png", "content": b"1"}, {"name": "b.png", "content": b"2"}),
            "choose exactly one image file, but the upload holds 2",
        ),
        # an upload entry without bytes
        (({"name": "a.png"},), "the uploaded file has no 'content' bytes"),
        # not an upload at all
        (3.5, "an upload must be an ipywidgets.FileUpload or its value, but got float"),
        # bytes that are not an image
        (b"not an image", "cannot read the given bytes as an image"),
        (({"name": "x.png", "content": b"nope"},), "cannot read the uploaded file 'x.png'"),
    ],
)
def test_load_image_bad_sources(source: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        samkit.load_image(source)


def test_load_image_bad_default() -> None:
    with pytest.raises(ValueError, match=re.escape("default must be an RGB uint8 np.ndarray")):
        samkit.load_image((), default=np.zeros((2, 2), dtype=np.uint8))
