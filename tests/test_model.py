from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from segment_anything.modeling import (
    Sam,
)

from samkit import files, locations, model
from samkit.model import (
    MODEL_TYPES,
    build_shapes_sam,
    checkpoint_model_type,
    default_model_type,
    download_checkpoint,
    load_sam,
    read_state_dict,
)

REDOWNLOAD = (
    "Delete it and download it again (samkit.download_checkpoint or `samkit download MODEL`)."
)


class RunsCode:
    """A pickle payload whose unpickling would create a marker directory."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def other_sam(patch_size: int, embed_dim: int) -> Sam:
    """A small SAM of another layout than ``shapes``: its own patch size and width."""
    return build_shapes_sam(
        dataclasses.replace(
            model.SHAPES_CONFIG,
            patch_size=patch_size,
            encoder_embed_dim=embed_dim,
            encoder_depth=2,
            encoder_global_attn_indexes=(1,),
            window_size=4,
            decoder_mlp_dim=128,
        )
    )


@pytest.fixture(scope="module")
def shapes_state() -> dict[str, torch.Tensor]:
    """A seeded random ``shapes`` state dict."""
    torch.manual_seed(1)
    return build_shapes_sam().state_dict()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dtype", "wrap"),
    [
        (torch.float32, None),  # a plain fp32 state dict
        (torch.float16, None),  # stored in half precision to keep the file small
        (torch.float32, "model"),  # wrapped as {"model": state_dict}
        (torch.float16, "state_dict"),  # wrapped as {"state_dict": ...}, in fp16
    ],
)
def test_load_sam_loads_a_shapes_checkpoint(
    tmp_path: Path,
    shapes_state: dict[str, torch.Tensor],
    dtype: torch.dtype,
    wrap: str | None,
) -> None:
    stored = {key: value.to(dtype) for key, value in shapes_state.items()}
    path = tmp_path / "sam_shapes.pt"
    torch.save(stored if wrap is None else {wrap: stored}, path)
    sam = load_sam("shapes", checkpoint=path, device="cpu")
    assert isinstance(sam, Sam)
    assert not sam.training
    loaded = sam.state_dict()
    assert loaded.keys() == shapes_state.keys()
    for key, value in shapes_state.items():
        assert loaded[key].dtype == value.dtype, key
        assert loaded[key].device.type == "cpu", key
        torch.testing.assert_close(loaded[key], value.to(dtype).to(value.dtype), msg=key)


def test_load_sam_defaults_to_env_model_and_bundled_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shapes_state: dict[str, torch.Tensor]
) -> None:
    bundled = tmp_path / "models" / "sam_shapes.pt"
    bundled.parent.mkdir()
    torch.save(shapes_state, bundled)
    monkeypatch.setattr(locations, "data_dir", lambda: tmp_path)
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv("SAMKIT_DEVICE", "cpu")
    sam = load_sam()
    patch = model.SHAPES_CONFIG.patch_size
    assert sam.image_encoder.patch_embed.proj.weight.shape == (128, 3, patch, patch)
    torch.testing.assert_close(
        sam.mask_decoder.iou_token.weight, shapes_state["mask_decoder.iou_token.weight"]
    )


def test_load_sam_without_bundled_checkpoint_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "models" / "sam_shapes.pt"
    monkeypatch.setattr(locations, "data_dir", lambda: tmp_path)
    message = re.escape(f"samkit's bundled file is missing: {missing}")
    with pytest.raises(FileNotFoundError, match=message):
        load_sam("shapes", device="cpu")


@pytest.mark.parametrize(
    ("active", "asked", "uses_env"),
    [
        ("shapes", "shapes", True),  # the active model type takes SAMKIT_CHECKPOINT
        ("shapes", None, True),  # and so does the default
        ("vit_b", "shapes", False),  # another type keeps its own checkpoint
    ],
)
def test_samkit_checkpoint_is_used_for_the_active_model_type(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shapes_state: dict[str, torch.Tensor],
    active: str,
    asked: str | None,
    uses_env: bool,
) -> None:
    given = tmp_path / "fine_tuned.pth"
    changed = {key: value.clone() for key, value in shapes_state.items()}
    changed["mask_decoder.iou_token.weight"] += 1.0
    torch.save(changed, given)
    monkeypatch.setenv("SAMKIT_MODEL", active)
    monkeypatch.setenv("SAMKIT_CHECKPOINT", str(given))
    assert (download_checkpoint(asked or active) == given) is uses_env
    sam = load_sam(asked, device="cpu")
    token = sam.mask_decoder.iou_token.weight
    expected = (
        changed if uses_env else read_state_dict(locations.data_file("models", "sam_shapes.pt"))
    )
    torch.testing.assert_close(token, expected["mask_decoder.iou_token.weight"].float())


def test_samkit_checkpoint_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv("SAMKIT_CHECKPOINT", str(tmp_path / "nope.pth"))
    message = re.escape(
        f"SAMKIT_CHECKPOINT names a file that does not exist: {tmp_path / 'nope.pth'}. "
        "Point it at a checkpoint file, or unset it to download the official checkpoint."
    )
    with pytest.raises(FileNotFoundError, match=message):
        load_sam(device="cpu")


@pytest.mark.parametrize(
    ("make", "error", "what"),
    [
        (lambda p: p.mkdir(), ValueError, "names a directory, not a checkpoint file"),
        (lambda p: p.write_bytes(b""), ValueError, "names an empty file (0 bytes)"),
    ],
)
def test_samkit_checkpoint_that_is_a_directory_or_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Any, error: type, what: str
) -> None:
    given = tmp_path / "sam.pth"
    make(given)
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv("SAMKIT_CHECKPOINT", str(given))
    message = re.escape(
        f"SAMKIT_CHECKPOINT {what}: {given}. Point it at a checkpoint file, or unset it to "
        "download the official checkpoint."
    )
    with pytest.raises(error, match=message):
        load_sam(device="cpu")


def test_an_onnx_file_is_not_called_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "decoder.onnx"
    # the start of what torch.onnx.export writes: ir_version, producer_name, ..., graph
    path.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x062.14.1:\xf0\xc4\xc6\x01\nC" + bytes(600))
    message = re.escape(
        f"checkpoint {path} is an ONNX model, not a PyTorch checkpoint: load_sam reads the "
        ".pth state dict (an ONNX file is what `samkit export-onnx` writes, for onnxruntime)"
    )
    with pytest.raises(ValueError, match=message):
        load_sam("shapes", checkpoint=path, device="cpu")


def test_load_sam_downloads_official_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a checkpoint, official types go through download_checkpoint; stand in for
    # it with a shapes file so that the wrong-architecture check answers quickly.
    torch.save(build_shapes_sam().state_dict(), tmp_path / "sam_vit_b_01ec64.pth")
    asked: list[str] = []

    def fake_download(model_type: str) -> Path:
        asked.append(model_type)
        return tmp_path / "sam_vit_b_01ec64.pth"

    monkeypatch.setattr(model, "download_checkpoint", fake_download)
    message = re.escape(
        f"checkpoint {tmp_path / 'sam_vit_b_01ec64.pth'} holds a 'shapes' model, but "
        "model_type 'vit_b' was requested; pass model_type='shapes'"
    )
    with pytest.raises(ValueError, match=message):
        load_sam("vit_b", device="cpu")
    assert asked == ["vit_b"]


@pytest.mark.parametrize(
    ("requested", "patch_size", "embed_dim", "holds"),
    [
        # another patch size and width: matches no known layout
        (
            "shapes",
            16,
            96,
            "a model of none of the known types (image encoder with embed dim 96, patch "
            "size 16, depth 2, input size 384)",
        ),
        # the same patch size, another width and depth
        (
            "vit_b",
            8,
            64,
            "a model of none of the known types (image encoder with embed dim 64, patch "
            "size 8, depth 2, input size 384)",
        ),
    ],
)
def test_wrong_architecture_names_both(
    tmp_path: Path, requested: str, patch_size: int, embed_dim: int, holds: str
) -> None:
    path = tmp_path / "other.pt"
    torch.save(other_sam(patch_size, embed_dim).state_dict(), path)
    message = re.escape(
        f"checkpoint {path} holds {holds}, but model_type {requested!r} was requested"
    )
    with pytest.raises(ValueError, match=message + "$"):
        load_sam(requested, checkpoint=path, device="cpu")


@pytest.mark.parametrize(
    ("payload", "holds"),
    [
        ({}, "an empty dict"),  # nothing in it
        ([1, 2], "a list"),  # not a dict
        ({"weights": 1.0}, "a dict with keys 'weights'"),  # a dict of non-tensors
        ({str(i): i for i in range(7)}, "a dict with keys '0', '1', '2', '3', '4', ..."),
    ],
)
def test_non_state_dict_is_refused(tmp_path: Path, payload: object, holds: str) -> None:
    path = tmp_path / "odd.pt"
    torch.save(payload, path)
    message = re.escape(
        f"checkpoint {path} must hold a state dict (parameter names mapped to tensors), "
        f"but holds {holds}"
    )
    with pytest.raises(ValueError, match=message):
        read_state_dict(path)


def test_state_dict_without_image_encoder_is_described(tmp_path: Path) -> None:
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    message = re.escape(
        f"checkpoint {path} holds a model of none of the known types (2 tensors, without "
        "SAM's image encoder), but model_type 'shapes' was requested"
    )
    with pytest.raises(ValueError, match=message):
        load_sam("shapes", checkpoint=path, device="cpu")


@pytest.mark.parametrize(
    ("protocol", "detail"),
    [
        # the protocol torch.save uses: stopped at the call to os.mkdir
        (2, r"Trying to load unsupported GLOBAL \w+\.mkdir.*"),
        # a hand-made pickle of the newest protocol: stopped even earlier
        (pickle.HIGHEST_PROTOCOL, r"Unsupported operand \d+"),
    ],
)
def test_pickle_that_runs_code_is_refused_and_never_runs(
    tmp_path: Path, protocol: int, detail: str
) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"image_encoder.pos_embed": RunsCode(marker)}, fh, protocol=protocol)
    message = (
        re.escape(
            f"Refused to load {path}: it is not a plain weights file, and loading it could "
            "run code from the file (torch.load with weights_only=True stopped at: "
        )
        + detail
        + re.escape(
            "). samkit only loads plain state dicts; if you trust the file's source, re-save "
            "its weights with torch.save(model.state_dict(), path)."
        )
    )
    with pytest.raises(ValueError, match=message):
        load_sam("shapes", checkpoint=path, device="cpu")
    assert not marker.exists()
    # The payload is live: plain pickle would have run it.
    with path.open("rb") as fh:
        pickle.load(fh)
    assert marker.exists()


def test_malicious_zip_checkpoint_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pt"
    torch.save({"w": RunsCode(marker)}, path)
    with pytest.raises(
        ValueError, match=re.escape(f"Refused to load {path}: it is not a plain weights file")
    ):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # a download cut off half way: "PytorchStreamReader failed reading zip archive"
        ("truncated", "is incomplete or corrupted (the download was probably cut off)."),
        # an error page saved by wget: "Unsupported operand 60" without the sniffing
        (
            b"<!DOCTYPE html><html><body>Not Found</body></html>",
            "is an HTML page (an error or login page saved under a checkpoint's name), not "
            "a checkpoint.",
        ),
        # the same with leading whitespace
        (b"\n  <html></html>", "is an HTML page (an error or login page saved"),
        # a zero-byte file
        (
            b"",
            "is an empty file (0 bytes), not a checkpoint: if it was downloaded, the "
            "download failed.",
        ),
        # a legacy (non-zip) file cut off early: EOFError
        (40, "is incomplete or corrupted (the download was probably cut off)."),
        # a legacy file cut off half way: "unexpected EOF, expected N more bytes"
        (0.5, "is incomplete or corrupted (the download was probably cut off)."),
        # a legacy file cut off after three bytes: IndexError inside torch
        (3, "is incomplete or corrupted (the download was probably cut off)."),
    ],
)
def test_broken_checkpoint_says_to_download_again(
    tmp_path: Path,
    shapes_state: dict[str, torch.Tensor],
    content: str | bytes | int | float,
    problem: str,
) -> None:
    """``content``: bytes to write, "truncated" (a zip checkpoint cut in half), or how
    much of a legacy-format checkpoint to keep (a byte count or a fraction)."""
    path = tmp_path / "sam.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncated":
        torch.save(shapes_state, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        assert not zipfile.is_zipfile(path)
    else:
        torch.save(shapes_state, path, _use_new_zipfile_serialization=False)
        data = path.read_bytes()
        keep = int(len(data) * content) if isinstance(content, float) else int(content)
        path.write_bytes(data[:keep])
    message = re.escape(f"checkpoint {path} {problem}")
    with pytest.raises(ValueError, match=message) as info:
        load_sam("shapes", checkpoint=path, device="cpu")
    assert str(info.value).endswith(REDOWNLOAD)


def test_html_that_passes_the_sniffing_still_reads_as_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch itself says "Unsupported operand 60" ('<') for an HTML page.
    path = tmp_path / "page.pth"
    path.write_bytes(b"<html></html>")
    monkeypatch.setattr(files, "sniff", lambda head: None)
    message = re.escape(f"checkpoint {path} is an HTML page, not a checkpoint. {REDOWNLOAD}")
    with pytest.raises(ValueError, match=message):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # an unknown model type
        (
            {"model_type": "vit_x"},
            ValueError,
            "model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got 'vit_x'",
        ),
        # a model type of the wrong kind
        (
            {"model_type": 1},
            ValueError,
            "model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got 1",
        ),
        # a checkpoint that does not exist
        (
            {"checkpoint": "{tmp}/nope.pt"},
            FileNotFoundError,
            "checkpoint file not found: {tmp}/nope.pt",
        ),
        # an empty checkpoint path
        ({"checkpoint": ""}, ValueError, "checkpoint must be a file path or None, but got ''"),
        # a checkpoint of the wrong kind
        ({"checkpoint": 3}, ValueError, "checkpoint must be a file path or None, but got 3"),
        # a device name torch does not know
        (
            {"device": "gpu"},
            ValueError,
            "device must be a device name such as 'cpu', 'cuda', 'cuda:0' or 'mps', but got 'gpu'",
        ),
        # a device of the wrong kind
        (
            {"device": 0.5},
            ValueError,
            "device must be a string such as 'cpu' or 'cuda:0', or a torch.device, but got 0.5",
        ),
    ],
)
def test_load_sam_validates_its_arguments(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    given = {
        key: value.format(tmp=tmp_path) if isinstance(value, str) else value
        for key, value in kwargs.items()
    }
    given.setdefault("model_type", "shapes")
    given.setdefault("device", "cpu")
    with pytest.raises(error, match=re.escape(message.format(tmp=tmp_path))):
        load_sam(**given)  # type: ignore[arg-type]


def test_cuda_without_gpu_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = re.escape(
        "device 'cuda:0' was requested, but PyTorch sees no CUDA GPU here; use "
        "device='cpu' (in Colab: Runtime > Change runtime type > GPU)"
    )
    with pytest.raises(ValueError, match=message):
        load_sam("shapes", checkpoint=tmp_path / "unused.pt", device="cuda:0")


@pytest.mark.parametrize(
    ("env_model", "device", "expected"),
    [
        ("shapes", "cpu", "shapes"),  # SAMKIT_MODEL wins
        (" vit_l ", "cuda", "vit_l"),  # even on a GPU, spaces trimmed
        ("", "cuda", "vit_h"),  # unset, CUDA: the largest model
        ("", "cuda:1", "vit_h"),  # any CUDA device
        ("", "cpu", "vit_b"),  # unset, CPU: the smallest official one
        ("", "mps", "vit_b"),  # an Apple GPU is not CUDA
    ],
)
def test_default_model_type(
    monkeypatch: pytest.MonkeyPatch, env_model: str, device: str, expected: str
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", env_model)
    monkeypatch.setattr(model.env, "default_device", lambda: device)
    assert default_model_type() == expected


@pytest.mark.parametrize(
    "env_model",
    [
        "vit_x",  # a typo
        "VIT_B",  # the wrong case
    ],
)
def test_default_model_type_rejects_unknown_env(
    monkeypatch: pytest.MonkeyPatch, env_model: str
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", env_model)
    message = re.escape(
        f"SAMKIT_MODEL must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got {env_model!r}"
    )
    with pytest.raises(ValueError, match=message):
        default_model_type()


@pytest.mark.parametrize("model_type", [n for n, spec in MODEL_TYPES.items() if spec.hub is None])
def test_checkpoint_model_type_recognises_each_architecture(model_type: str) -> None:
    with torch.device("meta"):
        sam = MODEL_TYPES[model_type].build()
    assert checkpoint_model_type(sam.state_dict()) == model_type


@pytest.mark.parametrize(
    "edit",
    [
        "drop",  # a missing key
        "extra",  # an unexpected key
        "reshape",  # a key of another shape
        "empty",  # nothing at all
    ],
)
def test_checkpoint_model_type_needs_an_exact_match(
    shapes_state: dict[str, torch.Tensor], edit: str
) -> None:
    state = dict(shapes_state)
    if edit == "drop":
        state.pop("mask_decoder.iou_token.weight")
    elif edit == "extra":
        state["head.weight"] = torch.zeros(1)
    elif edit == "reshape":
        state["mask_decoder.iou_token.weight"] = torch.zeros(1, 32)
    else:
        state = {}
    assert checkpoint_model_type(state) is None


# ------------------------------------------------------------------ what a bad checkpoint is


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        # a JSON error body saved under the checkpoint's name ("could run code" before)
        (
            b'{"error": {"code": 403, "message": "Access denied"}}',
            'is a JSON file, not a checkpoint (it starts with \'{"error": {"code": 403, '
            '"message": "Access denied"}}\': usually an error message a server sent '
            "instead of the file).",
        ),
        # a JSON list, after blank lines
        (
            b"\n\n[1, 2, 3]",
            "is a JSON file, not a checkpoint (it starts with '[1, 2, 3]': usually an "
            "error message a server sent instead of the file).",
        ),
        # an HTML page after a UTF-8 byte-order mark
        (
            b"\xef\xbb\xbf<!DOCTYPE html><html><body>Sign in</body></html>",
            "is an HTML page (an error or login page saved under a checkpoint's name), not "
            "a checkpoint.",
        ),
        # a gzip file (a compressed page, or a compressed checkpoint)
        (
            gzip.compress(b"<html>Forbidden</html>", mtime=0),
            "is a gzip file, not a checkpoint: if it holds one, decompress it first "
            "(gunzip); if not, it is a compressed error page.",
        ),
        # plain text
        (
            b"Access Denied",
            "is a text file, not a checkpoint (it starts with 'Access Denied': usually an "
            "error message a server sent instead of the file).",
        ),
    ],
)
def test_json_html_and_gzip_saved_as_a_checkpoint_are_named(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(content)
    message = f"checkpoint {path} {problem} {REDOWNLOAD}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_state_dict(path)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_sam("shapes", checkpoint=path, device="cpu")


@pytest.mark.parametrize(
    ("inside", "hint"),
    [
        ([], ""),  # an empty folder
        (["sam_vit_b_01ec64.pth", "notes.txt"], "; it holds sam_vit_b_01ec64.pth"),  # the file
    ],
)
def test_directory_given_as_checkpoint_is_called_a_directory(
    tmp_path: Path, inside: list[str], hint: str
) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in inside:
        (folder / name).write_bytes(b"")
    message = (
        f"checkpoint {folder} is a directory, not a checkpoint file: pass the path of the "
        f".pth file itself{hint}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_sam("shapes", checkpoint=folder, device="cpu")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_state_dict(folder)


def test_read_state_dict_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: "):
        read_state_dict(tmp_path / "nope.pth")


# ------------------------------------------------------------------ fast="auto"


def test_fast_wanted_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMKIT_FAST", raising=False)
    assert model.fast_wanted("cuda") is True
    assert model.fast_wanted(torch.device("mps")) is False
    import importlib.util

    real = importlib.util.find_spec
    assert model.fast_wanted("cpu") is (real("openvino") is not None)
    # no OpenVINO: the CPU keeps the plain encoder
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name)
    )
    assert model.fast_wanted("cpu") is False


@pytest.mark.parametrize(("value", "wanted"), [("0", False), ("off", False), ("1", True)])
def test_samkit_fast_decides(monkeypatch: pytest.MonkeyPatch, value: str, wanted: bool) -> None:
    monkeypatch.setenv("SAMKIT_FAST", value)
    assert model.fast_wanted("cpu") is wanted
    assert model.fast_wanted("mps") is wanted


def test_samkit_fast_must_be_on_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_FAST", "maybe")
    with pytest.raises(ValueError, match=r"^SAMKIT_FAST must be 1 or 0"):
        model.fast_wanted("cpu")


def test_fast_auto_off_keeps_the_plain_encoder_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAMKIT_FAST", "0")
    sam = load_sam("shapes", device="cpu", fast="auto")
    info = sam.image_encoder.fast_info
    assert (info.backend, info.precision) == ("torch", "f32")
    assert "SAMKIT_FAST=0" in info.detail


def test_fast_auto_on_goes_through_accelerate(monkeypatch: pytest.MonkeyPatch) -> None:
    import samkit.fast

    seen: list[Path] = []

    def record(sam: Any, checkpoint: Path) -> Any:
        seen.append(Path(checkpoint))
        return sam

    monkeypatch.setattr(samkit.fast, "accelerate", record)
    monkeypatch.setenv("SAMKIT_FAST", "1")
    load_sam("shapes", device="cpu", fast="auto")
    assert [p.name for p in seen] == ["sam_shapes.pt"]


def test_fast_must_be_a_bool_or_auto() -> None:
    with pytest.raises(ValueError, match=r"^fast must be True, False or 'auto', but got 'yes'$"):
        load_sam("shapes", device="cpu", fast="yes")  # type: ignore[arg-type]
