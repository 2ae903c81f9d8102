"""Loading SAM 2.1 and SAM 3 through Hugging Face transformers.

:func:`load_hf` gives a :class:`HfModel`: the transformers model and its processor, on a
device, in a precision chosen for it, and what its weights are. The weights come from
``SAMKIT_HF_WEIGHTS`` unless given: the official checkpoints on the Hugging Face Hub
(``hub``; SAM 3's is gated), or random weights built here with no download (``random``
at full size, ``small`` scaled down; see :mod:`samkit.hf.configs`). Loading a model
releases the one loaded before (its memory goes back to the GPU or the CPU), unless
``keep=True``: two large models rarely fit a free Colab GPU at once.

A checkpoint the learner may not download yet (a gated repository, HTTP 401 or 403)
raises :class:`GatedModelError` with a Spanish message that says how to ask for access
and log in, instead of transformers' traceback.

Example:
    ```python
    sam2 = samkit.hf.load_hf("sam2.1_tiny")      # facebook/sam2.1-hiera-tiny
    print(sam2.describe())
    ```
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from samkit import env
from samkit.hf.configs import HF_FAMILIES, build_model, char_tokenizer, check_name
from samkit.model import model_spec


class GatedModelError(PermissionError):
    """The Hugging Face Hub refused a checkpoint: gated, or the learner is not logged in."""


@dataclass
class HfModel:
    """A SAM 2.1 or SAM 3 model from transformers, ready to predict.

    Attributes:
        model_type: ``"sam2.1_tiny"``, ..., ``"sam3"``.
        model: The ``transformers.Sam2Model`` or ``Sam3Model``, in eval mode.
        processor: Its ``Sam2Processor`` or ``Sam3Processor``.
        weights: ``"hub"``, ``"random"``, ``"small"``, or the folder it was read from.
        device: Where the model is.
        dtype: Its parameters' precision.
        released: Whether its memory was given back (a later model was loaded).
    """

    model_type: str
    model: Any
    processor: Any
    weights: str
    device: torch.device
    dtype: torch.dtype
    released: bool = False

    @property
    def random(self) -> bool:
        """Whether the weights are random (``random`` or ``small``): masks mean nothing."""
        return self.weights in ("random", "small")

    def describe(self) -> str:
        """One Spanish line for the notebooks: the model, its weights, device and precision."""
        dtype = str(self.dtype).removeprefix("torch.")
        where = f"{self.device.type}, {dtype}"
        meaningless = "las máscaras no significan nada"
        if self.weights == "small":
            what = f"pesos ALEATORIOS, configuración chica (sin descarga): {meaningless}"
        elif self.weights == "random":
            what = f"pesos ALEATORIOS, tamaño real (sin descarga): {meaningless}"
        elif self.weights == "hub":
            what = f"pesos oficiales de {model_spec(self.model_type).hub}"
        else:
            what = f"pesos de {self.weights}"
        return f"{self.model_type}: {what} ({where})"

    def release(self) -> None:
        """Give the model's memory back; using it afterwards raises a clear error."""
        if not self.released:
            self.model.to("meta")
            self.released = True
        LOADED[:] = [loaded for loaded in LOADED if loaded is not self]

    def check(self) -> None:
        """Raise ``RuntimeError`` if the model was released.

        Raises:
            RuntimeError: If :meth:`release` was called (another model was loaded).
        """
        if self.released:
            raise RuntimeError(
                f"the {self.model_type} model was released when another model was loaded "
                f"(to free its memory): load it again with samkit.hf.load_hf({self.model_type!r}), "
                "or pass keep=True when loading the other one"
            )


#: The models :func:`load_hf` loaded and has not released.
LOADED: list[HfModel] = []


def release_all() -> None:
    """Release every model :func:`load_hf` loaded, and return the memory to the device."""
    while LOADED:
        LOADED.pop().release()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


#: The oldest transformers release with ``Sam2Model`` and ``Sam3Model`` as samkit uses them.
MIN_TRANSFORMERS = 5


def transformers_status() -> str:
    """Whether the installed transformers is new enough, as Spanish text to print.

    Returns:
        ``"transformers 5.25.0: alcanza para SAM 2.1 y SAM 3"``, or what to run when it
        is missing or older than :data:`MIN_TRANSFORMERS`.
    """
    from importlib.metadata import PackageNotFoundError, version

    upgrade = (
        f'ejecutá %pip install --upgrade "transformers>={MIN_TRANSFORMERS}" en una celda '
        "y reiniciá el entorno de ejecución"
    )
    try:
        installed = version("transformers")
    except PackageNotFoundError:
        return f"transformers no está instalado: {upgrade}"
    major = int(installed.split(".", 1)[0]) if installed.split(".", 1)[0].isdigit() else 0
    if major < MIN_TRANSFORMERS:
        return f"transformers {installed} es anterior a la {MIN_TRANSFORMERS}: {upgrade}"
    return f"transformers {installed}: alcanza para SAM 2.1 y SAM 3"


def choose_dtype(device: str | torch.device) -> torch.dtype:
    """The precision to run SAM 2.1 / SAM 3 in on ``device``.

    bfloat16 on a CUDA GPU that computes it (Ampere and later), float16 on an older one
    (a T4), float32 elsewhere: on a CPU bfloat16 is slower than float32 where it is not
    native (most laptops), and ``make bench`` measures it where it is.

    Args:
        device: The device.

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``torch.float32``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def hub_access_error(error: BaseException, repo: str) -> GatedModelError | None:
    """The :class:`GatedModelError` for ``error`` if the Hub refused access, else ``None``.

    ``error`` is what transformers raised: its chain of causes is searched for
    huggingface_hub's ``GatedRepoError``, or an HTTP 401/403 answer.

    Args:
        error: The exception.
        repo: The Hub repository asked for (``"facebook/sam3"``).

    Returns:
        The error to raise instead, with the Spanish message; ``None`` for other errors.
    """
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    seen: BaseException | None = error
    refused = False
    while seen is not None and not refused:
        status = getattr(getattr(seen, "response", None), "status_code", None)
        refused = isinstance(seen, GatedRepoError) or (
            isinstance(seen, HfHubHTTPError) and status in (401, 403)
        )
        seen = seen.__cause__ or seen.__context__
    if not refused:
        return None
    return GatedModelError(
        f"No tenés acceso a {repo}: es un modelo de acceso restringido en Hugging Face "
        "(o no iniciaste sesión). Para usarlo:\n"
        f"  1. Entrá a https://huggingface.co/{repo} con tu cuenta, leé la licencia y "
        "pedí acceso (el botón para aceptarla); la aprobación puede tardar un rato.\n"
        "  2. Creá un token de lectura en https://huggingface.co/settings/tokens.\n"
        "  3. Iniciá sesión con ese token: en una terminal, `huggingface-cli login` "
        "(o `hf auth login`); en el notebook, `from huggingface_hub import login` y "
        "después `login()`. En Colab también podés guardarlo como secreto HF_TOKEN "
        "(la llave de la barra lateral).\n"
        "Después ejecutá de nuevo esta celda."
    )


def local_processor(model_type: str, config: Any) -> Any:
    """The processor of a model built here (no download).

    SAM 2.1's is transformers' default (1024x1024, ImageNet mean and std), the one the
    checkpoints use; SAM 3's takes the configuration's image size and reads text with
    :func:`samkit.hf.configs.char_tokenizer`.
    """
    if HF_FAMILIES[model_type] == "sam2":
        from transformers import Sam2ImageProcessor, Sam2Processor

        return Sam2Processor(image_processor=Sam2ImageProcessor())
    from transformers import Sam3ImageProcessor, Sam3Processor

    size = config.vision_config.image_size
    return Sam3Processor(
        image_processor=Sam3ImageProcessor(size={"height": size, "width": size}),
        tokenizer=char_tokenizer(),
    )


def from_pretrained(model_type: str, source: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """Read a model and its processor from the Hub (or a local folder).

    Raises:
        GatedModelError: If the Hub refused the repository (gated, or not logged in).
    """
    from transformers import Sam2Model, Sam2Processor, Sam3Model, Sam3Processor

    sam3 = HF_FAMILIES[model_type] == "sam3"
    model_class, processor_class = (
        (Sam3Model, Sam3Processor) if sam3 else (Sam2Model, Sam2Processor)
    )
    try:
        model = model_class.from_pretrained(source, dtype=dtype)
        processor = processor_class.from_pretrained(source)
    except OSError as error:
        refused = hub_access_error(error, source)
        if refused is not None:
            raise refused from None
        raise
    return model, processor


def load_hf(
    model_type: str = "sam2.1_tiny",
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    keep: bool = False,
) -> HfModel:
    """Load SAM 2.1 or SAM 3 from transformers, releasing the model loaded before.

    Args:
        model_type: ``"sam2.1_tiny"``, ``"sam2.1_small"``, ``"sam2.1_base_plus"``,
            ``"sam2.1_large"`` or ``"sam3"``.
        weights: ``"hub"`` (the official checkpoint), ``"random"`` (full size, random),
            ``"small"`` (scaled down, random) or a folder saved with
            ``save_pretrained``. Defaults to ``SAMKIT_HF_WEIGHTS`` (else ``"hub"``).
        device: ``"cpu"``, ``"cuda"``, ...; defaults to ``samkit.env.default_device()``.
        dtype: The precision; defaults to :func:`choose_dtype` for the device.
        keep: Keep the models loaded before instead of releasing them.

    Returns:
        The :class:`HfModel`. Random weights are seeded, so they are the same each time.

    Raises:
        ValueError: If an argument is not valid.
        GatedModelError: If the Hub refused the checkpoint (a Spanish message says how
            to ask for access and log in).
    """
    check_name(model_type)
    source = env.hf_weights() if weights is None else weights
    if not isinstance(source, str | os.PathLike) or not str(source).strip():
        raise ValueError(
            f"weights must be 'hub', 'random', 'small' or a folder, but got {source!r}"
        )
    source = str(source)
    if source not in ("hub", "random", "small") and not Path(source).is_dir():
        raise ValueError(
            f"weights must be 'hub', 'random', 'small' or a folder saved with "
            f"save_pretrained, but got {source!r} (no such folder)"
        )
    target = torch.device(env.default_device() if device is None else device)
    chosen = choose_dtype(target) if dtype is None else dtype
    if not isinstance(chosen, torch.dtype) or not chosen.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, but got {dtype!r}")
    if not keep:
        release_all()
    if source in ("random", "small"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_model(model_type, small=source == "small")
        processor = local_processor(model_type, model.config)
    else:
        repo = model_spec(model_type).hub if source == "hub" else source
        model, processor = from_pretrained(model_type, str(repo), chosen)
    model.to(device=target, dtype=chosen).eval()
    loaded = HfModel(model_type, model, processor, source, target, chosen)
    LOADED.append(loaded)
    return loaded
