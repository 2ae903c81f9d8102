"""Images in and out: files to RGB arrays for SAM, arrays to data URLs for the widget."""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from samkit.checks import rgb_image as check_rgb_image

#: Pillow modes that hold one 16-bit (or wider integer) channel, scaled down to 8 bits.
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")

#: The formats :func:`encode_image` writes, with their MIME type.
_MIME = {"png": "image/png", "jpeg": "image/jpeg"}

#: The longest side a JPEG file can have (libjpeg's limit).
_JPEG_MAX_SIDE = 65500


def open_image(file: str | os.PathLike[str] | io.BytesIO, what: str) -> Image.Image:
    """``PIL.Image.open``, with Pillow's decompression-bomb refusal as a ``ValueError``.

    Raises:
        ValueError: If the image has more than ``2 * PIL.Image.MAX_IMAGE_PIXELS`` pixels
            (the message gives its pixel count and the limit).
    """
    try:
        return Image.open(file)
    except Image.DecompressionBombError as error:
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        limit = 2 * int(Image.MAX_IMAGE_PIXELS or 0)
        raise ValueError(
            f"{what} is an image of {size}, more than the {limit:,} pixels Pillow opens: "
            "it may be a decompression bomb (a small file that expands to gigabytes of "
            "memory). If you trust the file, raise PIL.Image.MAX_IMAGE_PIXELS first."
        ) from None


def _to_rgb(image: Image.Image) -> npt.NDArray[np.uint8]:
    """Convert any Pillow image to RGB uint8; transparency is composited on white."""
    if image.mode in _WIDE_GRAY_MODES:
        # Pillow's convert("L") clips 16-bit values at 255; scale 0..65535 to 0..255.
        wide = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, np.newaxis], 3, axis=2))
    if image.mode == "F":
        raise ValueError("floating-point images (Pillow mode 'F') are not supported")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _decode(stream: str | os.PathLike[str] | io.BytesIO, what: str) -> npt.NDArray[np.uint8]:
    """Decode an image file (a path or its bytes) into RGB uint8, upright."""
    try:
        with open_image(stream, what) as opened:
            upright = ImageOps.exif_transpose(opened)
            upright.load()
            return _to_rgb(upright)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read {what} as an image: {error}") from error


def _uploaded_file(value: Any) -> tuple[str, bytes] | None:
    """The one file of an ``ipywidgets.FileUpload`` value, or ``None`` when it is empty.

    ipywidgets 8 gives a tuple of dicts with ``name`` and ``content``; ipywidgets 7 a
    dict from the file name to a dict with ``content``.
    """
    if isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values()):
        entries = [{"name": name, **entry} for name, entry in value.items()]
    elif isinstance(value, Sequence) and all(isinstance(v, Mapping) for v in value):
        entries = [dict(entry) for entry in value]
    else:
        raise ValueError(
            "an upload must be an ipywidgets.FileUpload or its value, but got "
            f"{type(value).__name__}"
        )
    if not entries:
        return None
    if len(entries) > 1:
        raise ValueError(f"choose exactly one image file, but the upload holds {len(entries)}")
    content = entries[0].get("content")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise ValueError("the uploaded file has no 'content' bytes")
    return str(entries[0].get("name", "upload")), bytes(content)


def load_image(
    source: Any = None,
    default: str | os.PathLike[str] | npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Read an image (a file, an upload, or the learner's own file) into SAM's RGB array.

    The EXIF orientation is applied (a phone photo comes out upright), grayscale is
    repeated to three channels, 16-bit images are scaled to 8 bits, and transparent
    pixels are composited on white (a transparent background shows as white, as most
    viewers and the widget show it).

    Args:
        source: What to read:

            - a path of a PNG, JPEG or any other format Pillow reads;
            - the bytes of such a file;
            - an ``ipywidgets.FileUpload`` (or its ``.value``) holding one file;
            - ``None``: in Google Colab, Colab's upload button is shown and the chosen
              file is read (``samkit.env.colab_upload``); elsewhere ``default`` is used.
        default: What to use when there is nothing to read: ``source`` is ``None``
            outside Colab, or an upload that holds no file yet. A path or an RGB uint8
            array of shape `(H, W, 3)` (returned as it is).

    Returns:
        A numpy array of shape `(H, W, 3)` and dtype uint8, in RGB order (not OpenCV's BGR).

    Raises:
        FileNotFoundError: If there is no file at the path.
        ValueError: If the path is a directory, the file or bytes are not an image Pillow
            can read, an upload holds more than one file, or there is nothing to read
            and no ``default``.

    Example:
        ```python
        image = samkit.load_image("data/images/coffee.png")
        image = samkit.load_image()  # in Colab: an upload button
        predictor.set_image(image)
        ```
    """
    if source is not None and not isinstance(source, str | os.PathLike | bytes | bytearray):
        if hasattr(source, "value") and not isinstance(source, np.ndarray | Mapping):
            source = source.value  # an ipywidgets.FileUpload
        uploaded = _uploaded_file(source)
        if uploaded is None:
            return _default_image(default, "the upload holds no file yet")
        name, content = uploaded
        return _decode(io.BytesIO(content), f"the uploaded file {name!r}")
    if source is None:
        from samkit import env

        if not env.in_colab():
            return _default_image(default, "no image was given")
        name, content = env.colab_upload()
        return _decode(io.BytesIO(content), f"the uploaded file {name!r}")
    if isinstance(source, bytes | bytearray):
        return _decode(io.BytesIO(bytes(source)), "the given bytes")
    file = Path(source)
    if not file.exists():
        raise FileNotFoundError(f"image file not found: {file}")
    if file.is_dir():
        raise ValueError(f"{file} is a directory, not an image file")
    return _decode(file, str(file))


def _default_image(
    default: str | os.PathLike[str] | npt.NDArray[np.uint8] | None, why: str
) -> npt.NDArray[np.uint8]:
    """``default`` as an RGB array, or an error saying what to pass instead."""
    if default is None:
        raise ValueError(
            f"{why}: pass a file path, the bytes of an image or an ipywidgets.FileUpload "
            "holding one file (in Colab, load_image() shows an upload button)"
        )
    if isinstance(default, np.ndarray):
        return check_rgb_image(default, "default")
    return load_image(default)


def encode_image(
    image: str | os.PathLike[str] | npt.NDArray[np.uint8],
    image_format: Literal["png", "jpeg"] | None = None,
) -> str:
    """Encode an image as a base64 data URL for ``jupyter_bbox_widget.BBoxWidget(image=...)``.

    A path is read with :func:`load_image`, so the widget shows exactly the pixels
    (upright, RGB) that SAM gets, and the boxes drawn on it line up with them.

    Args:
        image: A path to an image file, or an RGB uint8 array of shape `(H, W, 3)`.
        image_format: ``"png"`` or ``"jpeg"``. ``None`` picks JPEG for a ``.jpg`` /
            ``.jpeg`` path (smaller for photos) and PNG (lossless) otherwise, and PNG
            for an image with a side longer than JPEG allows (65,500 pixels).

    Returns:
        A string ``"data:image/png;base64,..."`` (or ``image/jpeg``).

    Raises:
        FileNotFoundError: If a path does not exist.
        ValueError: If a path is not a readable image, an array is not RGB uint8
            `(H, W, 3)`, ``image_format`` is unknown, or ``"jpeg"`` is asked for an
            image with a side longer than 65,500 pixels.

    Example:
        ```python
        widget = BBoxWidget(image=samkit.encode_image("data/images/shapes.png"))
        ```
    """
    if image_format is not None and image_format not in _MIME:
        raise ValueError(f"image_format must be 'png' or 'jpeg', but got {image_format!r}")
    if isinstance(image, (str, os.PathLike)):
        pixels = load_image(image)
        is_jpeg = Path(image).suffix.lower() in (".jpg", ".jpeg")
        chosen = image_format or ("jpeg" if is_jpeg else "png")
    else:
        pixels = check_rgb_image(image)
        chosen = image_format or "png"
    height, width = pixels.shape[:2]
    if max(height, width) > _JPEG_MAX_SIDE and chosen == "jpeg":
        if image_format == "jpeg":
            raise ValueError(
                f"JPEG holds images up to {_JPEG_MAX_SIDE:,} pixels a side, but the image is "
                f"{width}x{height} (width x height); use image_format='png'"
            )
        chosen = "png"
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if chosen == "jpeg" else {}
    Image.fromarray(pixels).save(buffer, format=chosen.upper(), **options)
    return f"data:{_MIME[chosen]};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


#: The longest side of the copy a widget shows (a phone photo is 4000 pixels wide).
DISPLAY_MAX_SIDE = 1024


@dataclass(frozen=True)
class DisplayCopy:
    """A photo scaled down for a widget, and the way back to the photo's own pixels.

    Attributes:
        image: The copy the widget shows, RGB uint8 `(h, w, 3)` (the photo itself when
            it already fits).
        scale: The copy's pixels per photo pixel, in ``(0, 1]``.
        photo_shape: The photo's ``(H, W)``.
    """

    image: npt.NDArray[np.uint8]
    scale: float
    photo_shape: tuple[int, int]

    def to_photo(self, bboxes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Widget boxes drawn on the copy, in the photo's pixels (``label`` kept).

        Args:
            bboxes: ``BBoxWidget.bboxes``: dicts with ``x``, ``y``, ``width``, ``height``.

        Returns:
            New dicts with those four values divided by :attr:`scale`.
        """
        return [_scaled(bbox, 1 / self.scale) for bbox in bboxes]

    def to_display(self, bboxes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Widget boxes in the photo's pixels, on the copy (to preset them in a widget)."""
        return [_scaled(bbox, self.scale) for bbox in bboxes]


def _scaled(bbox: Mapping[str, Any], factor: float) -> dict[str, Any]:
    if not isinstance(bbox, Mapping):
        raise ValueError(f"a box must be a dict with keys x, y, width, height, but got {bbox!r}")
    scaled = dict(bbox)
    for key in ("x", "y", "width", "height"):
        if key in scaled:
            scaled[key] = float(scaled[key]) * factor
    return scaled


def display_copy(image: npt.NDArray[np.uint8], max_side: int = DISPLAY_MAX_SIDE) -> DisplayCopy:
    """A copy of a photo small enough for a widget, with the scale back to the photo.

    A 12-megapixel photo sent whole to ``BBoxWidget`` is a data URL of tens of
    megabytes; SAM itself sees the photo at 1024 pixels a side. Show the copy, and map
    what is drawn on it back with :meth:`DisplayCopy.to_photo`.

    Args:
        image: The photo, RGB uint8 `(H, W, 3)`.
        max_side: The copy's longest side at most.

    Returns:
        The :class:`DisplayCopy` (the photo itself, scale 1, when it fits).

    Raises:
        ValueError: If ``image`` is not RGB uint8 or ``max_side`` is not a whole number
            from 1 up.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> shown = samkit.images.display_copy(np.zeros((3000, 4000, 3), np.uint8))
        >>> shown.image.shape, shown.scale
        ((768, 1024, 3), 0.256)
        >>> shown.to_photo([{"x": 256, "y": 0, "width": 512, "height": 128, "label": ""}])
        [{'x': 1000.0, 'y': 0.0, 'width': 2000.0, 'height': 500.0, 'label': ''}]

        ```
    """
    check_rgb_image(image)
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise ValueError(f"max_side must be a whole number from 1 up, but got {max_side!r}")
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return DisplayCopy(image, 1.0, (height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)
    return DisplayCopy(np.asarray(small, dtype=np.uint8), scale, (height, width))


def size_report(image: npt.NDArray[np.uint8]) -> str:
    """How big a learner's photo is and what samkit does with it, as Spanish text.

    Args:
        image: The photo, RGB uint8 `(H, W, 3)`.

    Returns:
        One or three lines: the size in pixels and megapixels; for a photo larger than
        SAM's 1024-pixel input, that SAM sees a reduced copy, the masks come back at
        the photo's size, and the widgets show a copy of at most 1024 pixels a side.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> print(samkit.images.size_report(np.zeros((3000, 4000, 3), np.uint8)))
        tu foto: 4000 × 3000 píxeles (12.0 megapíxeles)
        SAM la ve reducida a 1024 píxeles de lado y devuelve máscaras del tamaño de tu foto.
        Los widgets muestran una copia de 1024 × 768 y llevan tus cajas y puntos a la foto.

        ```
    """
    check_rgb_image(image)
    height, width = image.shape[:2]
    line = f"tu foto: {width} × {height} píxeles ({height * width / 1e6:.1f} megapíxeles)"
    if max(height, width) <= DISPLAY_MAX_SIDE:
        return line
    shown = display_copy(image).image
    return (
        f"{line}\nSAM la ve reducida a 1024 píxeles de lado y devuelve máscaras del "
        f"tamaño de tu foto.\nLos widgets muestran una copia de {shown.shape[1]} × "
        f"{shown.shape[0]} y llevan tus cajas y puntos a la foto."
    )
