"""What a fine-tuning run gives back: where its files are, and how it went.

Example:
    ```python
    result = samkit.finetune.finetune("labels/annotations.json", out="mi_sam.pth")
    print(result.report())     # the validation mIoU before and after, in Spanish
    result.plot()              # the validation curve
    sam = samkit.load_sam(result.model_type, checkpoint=result.checkpoint)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FinetuneResult:
    """The outcome of :func:`samkit.finetune.finetune`.

    Attributes:
        checkpoint: The fine-tuned state dict (``load_sam(model_type, checkpoint=...)``).
        record: Its JSON record: base model, data digest, settings, metrics.
        model_type: The model type it loads as.
        history: One record per epoch, epoch 0 being the base model: ``box_miou``,
            ``point_miou`` (validation), ``loss``, ``seconds``.
        best_epoch: The epoch whose weights were kept (0: none beat the base model).
        train_images: The file names trained on.
        val_images: The file names held out.
        embeddings_computed: Image embeddings computed in this call (the rest came from
            the cache).
        seconds: Wall time of the whole call.
    """

    checkpoint: Path
    record: Path
    model_type: str
    history: list[dict[str, Any]]
    best_epoch: int
    train_images: list[str]
    val_images: list[str]
    embeddings_computed: int
    seconds: float

    @property
    def before(self) -> dict[str, Any]:
        """The base model's validation metrics (epoch 0)."""
        return self.history[0]

    @property
    def after(self) -> dict[str, Any]:
        """The kept epoch's validation metrics."""
        return self.history[self.best_epoch]

    def summary(self) -> str:
        """The outcome in a few English lines (what ``samkit finetune`` prints)."""
        b, a = self.before, self.after
        return "\n".join(
            [
                f"fine-tuned {self.model_type} on {len(self.train_images)} images "
                f"({len(self.val_images)} held out), best epoch {self.best_epoch} of "
                f"{len(self.history) - 1}",
                f"validation box mIoU   {b['box_miou']:.3f} -> {a['box_miou']:.3f}",
                f"validation point mIoU {b['point_miou']:.3f} -> {a['point_miou']:.3f}",
                f"wrote {self.checkpoint} and {self.record}",
            ]
        )

    def report(self) -> str:
        """The validation mIoU before and after, as a few lines of Spanish text."""
        lines = [
            f"imágenes: {len(self.train_images)} de entrenamiento, "
            f"{len(self.val_images)} de validación",
            f"mIoU con caja:  antes {self.before['box_miou']:.3f}, "
            f"después {self.after['box_miou']:.3f}",
            f"mIoU con punto: antes {self.before['point_miou']:.3f}, "
            f"después {self.after['point_miou']:.3f}",
            f"mejor época: {self.best_epoch} de {len(self.history) - 1}",
        ]
        return "\n".join(lines)

    def plot(self) -> Any:
        """The validation mIoU of every epoch (0: before training) as a matplotlib figure.

        Returns:
            A ``matplotlib.figure.Figure`` (shown by Jupyter when it is a cell's value).
        """
        from matplotlib.figure import Figure

        epochs = [record["epoch"] for record in self.history]
        figure = Figure(figsize=(6, 3.5), layout="constrained")
        axes = figure.add_subplot()
        axes.plot(epochs, [r["box_miou"] for r in self.history], "o-", label="con caja")
        axes.plot(epochs, [r["point_miou"] for r in self.history], "s-", label="con punto")
        axes.axvline(self.best_epoch, color="grey", linestyle=":", label="mejor época")
        axes.set_xlabel("época (0: antes de ajustar)")
        axes.set_ylabel("mIoU de validación")
        axes.set_ylim(0, 1)
        axes.set_xticks(epochs)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
        return figure
