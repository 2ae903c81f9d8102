from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from samkit.finetune.result import FinetuneResult


def _result(best: int = 2) -> FinetuneResult:
    history = [
        {"epoch": 0, "box_miou": 0.61, "point_miou": 0.5, "loss": None},
        {"epoch": 1, "box_miou": 0.72, "point_miou": 0.55, "loss": 1.2},
        {"epoch": 2, "box_miou": 0.84, "point_miou": 0.7, "loss": 0.8},
    ]
    return FinetuneResult(Path("m.pth"), Path("m.json"), "shapes", history, best,
                          ["a.png", "b.png"], ["c.png"], 3, 1.0)  # fmt: skip


def test_report_in_spanish_and_summary_in_english() -> None:
    result = _result()
    assert result.report() == (
        "imágenes: 2 de entrenamiento, 1 de validación\n"
        "mIoU con caja:  antes 0.610, después 0.840\n"
        "mIoU con punto: antes 0.500, después 0.700\n"
        "mejor época: 2 de 2"
    )
    assert "validation box mIoU   0.610 -> 0.840" in result.summary()
    assert "wrote m.pth and m.json" in result.summary()


def test_when_no_epoch_beats_the_base_model_after_is_before() -> None:
    result = _result(best=0)
    assert result.after == result.before and "mejor época: 0 de 2" in result.report()


def test_plot_has_both_curves_and_the_best_epoch() -> None:
    figure = _result().plot()
    assert isinstance(figure, Figure)
    [axes] = figure.axes
    assert [line.get_label() for line in axes.get_lines()] == [
        "con caja",
        "con punto",
        "mejor época",
    ]
    assert list(axes.get_lines()[0].get_ydata()) == [0.61, 0.72, 0.84]
