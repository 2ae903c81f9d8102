"""Keeping the downloaded weights on Google Drive, so that a Colab learner downloads once.

Every Colab notebook runs on a fresh machine: without a lasting folder, a learner who
runs the whole tutorial downloads the checkpoint once per notebook (``vit_h`` is 2.5 GB).
:func:`use_drive` mounts the learner's Google Drive and points ``SAMKIT_HOME`` (where
checkpoints are downloaded and converted encoders cached) at a folder there. The
notebooks call it from their first cells with ``PESOS_EN_DRIVE``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from samkit import env, locations

__all__ = ["DRIVE_MOUNT", "drive_weights_dir", "use_drive"]

#: Where Colab mounts Google Drive.
DRIVE_MOUNT = Path("/content/drive")


def drive_weights_dir(folder: str = "samkit") -> Path:
    """The weights folder on the mounted Drive: ``/content/drive/MyDrive/<folder>/weights``.

    Args:
        folder: The folder in the learner's Drive ("Mi unidad").

    Returns:
        The path (it may not exist yet).

    Raises:
        ValueError: If ``folder`` is not a plain folder name.

    Example:
        >>> str(drive_weights_dir())
        '/content/drive/MyDrive/samkit/weights'
    """
    if not isinstance(folder, str) or not folder.strip() or "/" in folder or folder in (".", ".."):
        raise ValueError(f"folder must be a plain folder name such as 'samkit', but got {folder!r}")
    return DRIVE_MOUNT / "MyDrive" / folder / "weights"


def use_drive(enabled: bool, folder: str = "samkit") -> Path | None:
    """In Colab, keep checkpoints on the learner's Google Drive; say so in Spanish.

    With ``enabled``, in Colab: mounts Drive (Colab asks the learner for permission),
    creates :func:`drive_weights_dir` and sets ``SAMKIT_HOME`` to it for this session, so
    that ``samkit.download_checkpoint`` downloads a checkpoint once for every notebook and
    finds it there afterwards. Outside Colab the weights already stay on disk: it prints
    where, and changes nothing.

    Args:
        enabled: The notebook's ``PESOS_EN_DRIVE``; ``False`` does nothing.
        folder: The folder in the learner's Drive.

    Returns:
        The weights folder on Drive when it was set up, else ``None``.

    Raises:
        ValueError: If ``enabled`` is not a bool or ``folder`` is not a folder name.

    Example:
        ```python
        PESOS_EN_DRIVE = True
        samkit.use_drive(PESOS_EN_DRIVE)
        ```
    """
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True or False, but got {enabled!r}")
    weights = drive_weights_dir(folder)
    if not enabled:
        return None
    if not env.in_colab():
        print(
            "PESOS_EN_DRIVE es solo para Colab: en tu máquina los pesos ya se descargan una "
            f"sola vez, en {locations.weights_dir()}."
        )
        return None
    importlib.import_module("google.colab.drive").mount(str(DRIVE_MOUNT))
    weights.mkdir(parents=True, exist_ok=True)
    env.set_variable("SAMKIT_HOME", str(weights))
    print(
        f"Los pesos van a tu Google Drive, en {weights}: se descargan una sola vez y los "
        "usan todos los notebooks."
    )
    return weights
