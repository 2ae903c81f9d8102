"""The exported prompt decoder, run with onnxruntime, against torch's SamPredictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

import samkit
from samkit.cli import main
from samkit.fast.onnx import export_decoder


@pytest.fixture(scope="module")
def shapes_model() -> Sam:
    return samkit.load_sam("shapes", device="cpu")


@pytest.fixture(scope="module")
def exported(shapes_model: Sam, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_decoder(shapes_model, tmp_path_factory.mktemp("onnx") / "decoder.onnx")


@pytest.fixture(scope="module")
def scene_predictor(shapes_model: Sam) -> tuple[samkit.Scene, SamPredictor]:
    scene = samkit.shapes.make_scene(7, 240, 320)
    predictor = SamPredictor(shapes_model)
    predictor.set_image(scene.image)
    return scene, predictor


def _run_onnx(
    path: Path, predictor: SamPredictor, coords: np.ndarray, labels: np.ndarray, size: tuple
) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    low_res = [4 * s for s in predictor.model.prompt_encoder.image_embedding_size]
    masks, scores, _ = session.run(
        None,
        {
            "image_embeddings": predictor.features.numpy(),
            "point_coords": predictor.transform.apply_coords(coords, size)[None].astype(np.float32),
            "point_labels": labels[None].astype(np.float32),
            "mask_input": np.zeros((1, 1, *low_res), dtype=np.float32),
            "has_mask_input": np.zeros(1, dtype=np.float32),
            "orig_im_size": np.array(size, dtype=np.float32),
        },
    )
    return masks[0, 0] > predictor.model.mask_threshold, scores[0]


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["point", "box", "box_and_point", "two_points"])
def test_onnx_decoder_matches_torch(
    exported: Path, scene_predictor: tuple[samkit.Scene, SamPredictor], prompt: str
) -> None:
    scene, predictor = scene_predictor
    box = scene.xyxy[0]
    centre = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
    size = scene.image.shape[:2]
    if prompt == "point":
        masks, scores, _ = predictor.predict(point_coords=centre, point_labels=np.array([1]))
        best = int(np.argmax(scores))
        expected, expected_score = masks[best], scores[best]
        coords = np.concatenate([centre, [[0.0, 0.0]]])
        labels = np.array([1, -1])
    else:
        # The graph takes every prompt as points: the box as its two corners (labels 2,
        # 3), and a padding point (label -1) wherever torch's prompt encoder adds one
        # (points without a box). A box alone gets an explicit padding point on both
        # sides, so that the graph returns its single mask, as segment-anything's
        # ONNX example does.
        points = {
            "box": np.array([[0.0, 0.0]]),
            "box_and_point": centre,
            "two_points": np.concatenate([centre, [[box[0] + 2, box[1] + 2]]]),
        }[prompt]
        labels = {"box": np.array([-1]), "box_and_point": np.array([1])}.get(
            prompt, np.array([1, 1])
        )
        masks, scores, _ = predictor.predict(
            point_coords=points,
            point_labels=labels,
            box=None if prompt == "two_points" else box,
            multimask_output=False,
        )
        expected, expected_score = masks[0], scores[0]
        if prompt == "two_points":
            coords = np.concatenate([points, [[0.0, 0.0]]])
            labels = np.append(labels, -1)
        else:
            coords = np.concatenate([points, box.reshape(2, 2)])
            labels = np.append(labels, [2, 3])
    ours, our_score = _run_onnx(exported, predictor, coords, labels, size)
    assert expected.any()
    assert samkit.masks.mask_iou(ours, expected) >= 0.99
    np.testing.assert_allclose(our_score, expected_score, atol=1e-3)


@pytest.mark.slow
def test_quantized_export_through_the_cli(
    tmp_path: Path,
    scene_predictor: tuple[samkit.Scene, SamPredictor],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "sub" / "decoder_int8.onnx"
    assert main(["export-onnx", "shapes", "--out", str(out), "--quantize"]) == 0
    assert str(out) in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["decoder_int8.onnx"]  # no temp left
    scene, predictor = scene_predictor
    box = scene.xyxy[1]
    expected = predictor.predict(box=box, multimask_output=False)[0][0]
    coords = np.concatenate([box.reshape(2, 2), [[0.0, 0.0]]])
    ours, _ = _run_onnx(out, predictor, coords, np.array([2, 3, -1]), scene.image.shape[:2])
    assert samkit.masks.mask_iou(ours, expected) >= 0.9


@pytest.mark.parametrize(
    ("out", "opset", "message"),
    [
        ("decoder.onx", 17, "out must be a file ending in .onnx"),
        ("", 17, "out must be a file ending in .onnx"),
        ("decoder.onnx", 9, r"opset must be an integer from 11 to 20 \(.*\), but got 9"),
        # an opset the exporter lacks: refused before exporting, not torch's RuntimeError
        ("decoder.onnx", 99, r"opset must be an integer from 11 to 20 \(the opsets torch .*'s "),
        ("decoder.onnx", True, r"opset must be an integer from 11 to 20 .* but got True"),
    ],
)
def test_bad_arguments(
    shapes_model: Sam, tmp_path: Path, out: str, opset: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        export_decoder(shapes_model, tmp_path / out if out else out, opset=opset)
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_reports_a_bad_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export-onnx", "vit_x", "--out", str(tmp_path / "d.onnx")]) == 1
    assert "model_type must be one of" in capsys.readouterr().err
