"""'Say a keyword' without a browser: WAV in, chip, summary out; bad audio gives a message."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

pytest.importorskip("unicorn")
pytest.importorskip("ipywidgets")

from tinyml_helpers.deploy import say_keyword as SK  # noqa: E402
from tinyml_helpers.deploy import streaming  # noqa: E402
from tinyml_helpers.deploy.audio_input import AudioInputError  # noqa: E402


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    fw = streaming.build_pcm_firmware(None, tmp_path_factory.mktemp("say"), ["_silence_", "loud", "_unknown_"],
                                      input_scale=0.0415, input_zero_point=-5)
    return SK.KeywordSpotterUI(fw, show=lambda fig: None)


def test_a_bundled_clip_as_a_laptop_records_it(ui):
    t = np.arange(16000) / 16000
    text = ui.process_wav(SK.bundled_clip_wav(0.5 * np.sin(2 * np.pi * 700 * t)))
    assert "44.1 kHz" in text and "2 channels" in text and "resampled" in text
    assert "detected 'loud'" in text
    rec, res = ui.last
    assert len(rec.pcm) == 32000 and res.features.shape == (res.frames, 40)


@pytest.mark.parametrize("make, match", [
    (lambda: np.zeros(100, np.uint8), "8-bit"),            # 8-bit, short: converted and padded
    (lambda: np.zeros(8000, np.int16), "silent"),
])
def test_awkward_wavs_are_converted_with_notes(ui, make, match):
    from scipy.io import wavfile

    buf = io.BytesIO()
    wavfile.write(buf, 16000, make())
    text = ui.process_wav(buf.getvalue())
    assert match in text and "no keyword detected" in text


def test_bad_files_give_a_message_not_a_traceback(ui):
    assert ui.process_wav(b"RIFF garbage").startswith("cannot use this audio")
    assert ui.process(np.zeros(0, np.float32), 16000).startswith("cannot use this audio: the recording is empty")


def test_browser_audio_decoding():
    b64 = base64.b64encode(np.linspace(-1, 1, 48000, dtype="<f4").tobytes()).decode()
    data, rate = SK.decode_browser_audio(b64, 48000)
    assert data.shape == (48000,) and rate == 48000
    with pytest.raises(AudioInputError, match="base64"):
        SK.decode_browser_audio("not base64!", 48000)
    with pytest.raises(AudioInputError, match="whole float32"):
        SK.decode_browser_audio(base64.b64encode(b"abc").decode(), 48000)


def test_recorder_seconds_are_checked():
    with pytest.raises(ValueError, match="seconds"):
        SK.make_recorder(0.1)
