"""The whole chain on the emulated chip with a real (tiny) int8 network: raw samples in, the same
outputs as the firmware fed with the host's features."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("unicorn")

from test_deploy_pipeline import TinyNet, _export_int8  # noqa: E402
from tinyml_helpers.deploy import frontend as F, pipeline, streaming as S  # noqa: E402

CLASSES = ["yes", "no", "_silence_", "_unknown_", "up"]


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    torch.manual_seed(1)
    return _export_int8(TinyNet(classes=len(CLASSES)), tmp_path_factory.mktemp("pcm_model"), shape=(1, 1, 49, 40))


def test_samples_in_gives_what_host_features_give(tiny_int8, tmp_path):
    from tinyml_helpers.data import load_keyword_audio
    from tinyml_helpers.data.features import compute_features

    dep = pipeline.deploy_onnx(tiny_int8, tmp_path / "host")
    fw = S.build_pcm_firmware(tiny_int8, tmp_path / "pcm", CLASSES)
    assert fw.spec.input_scale == pytest.approx(dep.model.tensors[dep.model.input].scale)
    audio = load_keyword_audio("test").audio[:4]
    same = 0
    for clip in audio:
        pcm = F.pcm_from_float(clip)
        host = dep.firmware.infer(dep.model.quantize_input(compute_features(pcm.astype(np.float32) / 32768)))
        chip = fw.classify_clip(pcm)
        same += int(np.array_equal(host, chip))
    assert same >= 3   # identical unless a feature value sits on a rounding boundary
    b = fw.count_budget(F.pcm_from_float(audio[0]))
    _, stats = dep.firmware.infer(np.zeros(49 * 40, np.int8), count=True)
    # the network part of the streaming budget is the network (plus copying 49 frames and deciding)
    assert stats.instructions < b["inference_instructions"] < stats.instructions + 30_000


def test_wrong_model_input_or_classes_are_refused(tmp_path):
    int8 = _export_int8(TinyNet(classes=3), tmp_path)   # a 13 x 11 input
    with pytest.raises(ValueError, match="log-mel frames"):
        S.build_pcm_firmware(int8, tmp_path / "a", ["a", "b", "c"])


def test_class_count_must_match(tiny_int8, tmp_path):
    with pytest.raises(ValueError, match="outputs but 2 class names"):
        S.build_pcm_firmware(tiny_int8, tmp_path / "b", ["yes", "no"])
