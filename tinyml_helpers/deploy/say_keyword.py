"""Say a keyword: record in the browser (or upload a WAV), stream it through the emulated chip,
and show the waveform, the chip's features and its detections.

The microphone part is a small ``anywidget`` (:func:`make_recorder`): the browser's
``getUserMedia`` captures mono float32 samples at the sound card's rate, which are sent to the
kernel as base64 (a few hundred KiB for a few seconds). Everything after that is Python:
:func:`tinyml_helpers.deploy.audio_input.to_pcm16k` converts (rate, channels, bit depth, length)
and :meth:`~tinyml_helpers.deploy.streaming.PcmFirmware.run` feeds the chip like a DMA would.
Headless runs (tests, no browser, no microphone) call :meth:`KeywordSpotterUI.process_wav`
with a bundled clip (:func:`bundled_clip_wav`) and print the same summary.

Written for this course (ipywebrtc, the usual way to record in a notebook, does not work in
JupyterLab 4).

Example:
    >>> "getUserMedia" in RECORDER_ESM
    True
"""
from __future__ import annotations

import base64
import io
from typing import Any, Callable, Sequence

import numpy as np

from .audio_input import AudioInputError, Recording, read_wav, to_pcm16k

__all__ = ["RECORDER_ESM", "make_recorder", "decode_browser_audio", "spot_keywords", "describe",
           "plot_spotting", "bundled_clip_wav", "KeywordSpotterUI"]

RECORDER_ESM = r"""
function toBase64(floats) {
  const bytes = new Uint8Array(floats.buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
async function record(seconds, status) {
  // no echo cancellation / noise suppression / gain control: the chip's microphone has none
  const stream = await navigator.mediaDevices.getUserMedia(
    { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const want = Math.round(seconds * ctx.sampleRate);
  const chunks = [];
  let n = 0;
  status.textContent = "recording... say a keyword";
  await new Promise((resolve) => {
    proc.onaudioprocess = (e) => {
      if (n >= want) return;
      const x = e.inputBuffer.getChannelData(0);
      chunks.push(new Float32Array(x));
      n += x.length;
      if (n >= want) resolve();
    };
    src.connect(proc);
    proc.connect(ctx.destination);
  });
  src.disconnect(); proc.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = ctx.sampleRate;
  await ctx.close();
  const all = new Float32Array(n);
  let o = 0;
  for (const c of chunks) { all.set(c, o); o += c.length; }
  return { samples: all, rate: rate };
}
function render({ model, el }) {
  const btn = document.createElement("button");
  btn.className = "tm-record jupyter-button";
  btn.textContent = "Record " + model.get("seconds") + " s";
  const status = document.createElement("span");
  status.className = "tm-record-status";
  status.style.marginLeft = "1em";
  status.textContent = model.get("status");
  model.on("change:status", () => { status.textContent = model.get("status"); });
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      const rec = await record(model.get("seconds"), status);
      model.set("sample_rate", rec.rate);
      model.set("pcm_b64", toBase64(rec.samples));
      model.set("takes", model.get("takes") + 1);
      model.save_changes();
      status.textContent = "sent " + (rec.samples.length / rec.rate).toFixed(1) + " s at " + rec.rate + " Hz to the chip...";
    } catch (err) {
      status.textContent = "no microphone: " + err.message + " (upload a WAV file instead)";
      model.set("error", String(err.message));
      model.save_changes();
    } finally {
      btn.disabled = false;
    }
  });
  el.append(btn, status);
}
export default { render };
"""


def make_recorder(seconds: float = 2.0) -> Any:
    """The microphone widget (needs ``anywidget``): its ``takes`` trait increases with each
    recording, ``pcm_b64`` / ``sample_rate`` hold it.

    Example:
        >>> # rec = make_recorder(2.0); display(rec)
    """
    if not 0.5 <= float(seconds) <= 30:
        raise ValueError(f"seconds must be between 0.5 and 30, got {seconds}")
    try:
        import anywidget
        import traitlets
    except ImportError as exc:
        raise ImportError("the microphone widget needs anywidget (pip install anywidget; it is in "
                          "requirements.txt); upload a WAV file instead") from exc

    class KeywordRecorder(anywidget.AnyWidget):
        _esm = RECORDER_ESM
        seconds = traitlets.Float(2.0).tag(sync=True)
        sample_rate = traitlets.Int(0).tag(sync=True)
        pcm_b64 = traitlets.Unicode("").tag(sync=True)
        takes = traitlets.Int(0).tag(sync=True)
        status = traitlets.Unicode("press Record and say a keyword").tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)

    return KeywordRecorder(seconds=float(seconds))


def decode_browser_audio(pcm_b64: str, sample_rate: int) -> tuple[np.ndarray, int]:
    """Base64 float32 little-endian samples from the browser -> (float32 array, rate).

    Example:
        >>> b64 = base64.b64encode(np.array([0.5, -0.5], "<f4").tobytes()).decode()
        >>> decode_browser_audio(b64, 48000)[0].tolist()
        [0.5, -0.5]
    """
    try:
        raw = base64.b64decode(pcm_b64, validate=True)
    except (ValueError, TypeError) as exc:
        raise AudioInputError(f"the browser sent audio that is not base64 ({exc})") from exc
    if len(raw) % 4:
        raise AudioInputError(f"the browser sent {len(raw)} bytes, not whole float32 samples")
    return np.frombuffer(raw, "<f4").astype(np.float32), int(sample_rate)


def spot_keywords(pcm_fw: Any, data: np.ndarray, sample_rate: int) -> tuple[Recording, Any]:
    """Convert any audio (see ``to_pcm16k``) and stream it through the chip, keeping its frames.

    Example:
        >>> # rec, res = spot_keywords(pcm_fw, *read_wav("me.wav"))
    """
    rec = to_pcm16k(data, sample_rate)
    return rec, pcm_fw.run(rec.pcm, collect_features=True)


def describe(rec: Recording, res: Any) -> str:
    """A plain-text summary of one recording's trip through the chip.

    Example:
        >>> # print(describe(rec, res))
    """
    lines = [f"{rec.source_seconds:.2f} s at {rec.source_rate / 1000:g} kHz -> {rec.seconds:.2f} s of 16 kHz int16 "
             f"on the chip: {res.frames} feature frames, {len(res.outputs)} inferences"]
    lines += [f"note: {n}" for n in rec.notes]
    if res.detections:
        lines += [f"detected '{w}' at {t:.2f} s (smoothed probability {p:.2f})" for t, w, p in res.detections]
    else:
        lines.append("no keyword detected")
    return "\n".join(lines)


def plot_spotting(rec: Recording, res: Any, classes: Sequence[str], ignore: Sequence[str] = ()) -> Any:
    """Waveform with detections, the chip's int8 features, and per-inference keyword probability.

    Example:
        >>> # fig = plot_spotting(rec, res, classes); plt.show()
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.3, 1]})
    t = np.arange(len(rec.pcm)) / 16000
    axes[0].plot(t, rec.pcm / 32768, lw=0.5, color="0.3")
    axes[0].set(ylabel="samples", ylim=(-1.05, 1.05), title="what the microphone delivered (int16, 16 kHz)")
    for when, word, _ in res.detections:
        axes[0].axvline(when, color="tab:red")
        axes[0].text(when, 0.9, f" {word}", color="tab:red", va="top")
    if res.features is not None and len(res.features):
        # frame k covers samples 320k .. 320k + 640: draw it at its centre
        extent = (0.02, 0.02 + len(res.features) * 0.02, 0, res.features.shape[1])
        axes[1].imshow(res.features.T, origin="lower", aspect="auto", cmap="magma", extent=extent)
    axes[1].set(ylabel="mel band", title="log-mel features computed on the chip (int8)")
    keep = [i for i, c in enumerate(classes) if c not in ignore]
    if len(res.outputs):
        z = res.logits - res.logits.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        for i in keep:
            if p[:, i].max() > 0.2:
                axes[2].plot(res.times, p[:, i], marker="o", ms=3, label=classes[i])
        if axes[2].get_legend_handles_labels()[0]:
            axes[2].legend(loc="upper right", fontsize=8, ncol=4)
    axes[2].set(ylabel="probability", xlabel="time (s)", ylim=(0, 1.05),
                title="network output every 250 ms (window centre)")
    fig.tight_layout()
    return fig


def bundled_clip_wav(audio: np.ndarray, rate: int = 44100, channels: int = 2, pad_s: float = 0.5) -> bytes:
    """A bundled 16 kHz test clip as a WAV file like a laptop records it (44.1 kHz stereo 16-bit
    by default), padded with silence: what the headless run feeds instead of a microphone.

    Example:
        >>> wav = bundled_clip_wav(np.zeros(16000, np.float32))
        >>> read_wav(wav)[0].shape
        (88200, 2)
    """
    from scipy.io import wavfile
    from scipy.signal import resample_poly
    from math import gcd

    a = np.asarray(audio, np.float64).reshape(-1)
    pad = np.zeros(int(pad_s * 16000))
    a = np.concatenate([pad, a, pad])
    g = gcd(int(rate), 16000)
    a = resample_poly(a, int(rate) // g, 16000 // g) if rate != 16000 else a
    pcm = np.clip(np.rint(a * 32767), -32768, 32767).astype(np.int16)
    pcm = np.repeat(pcm[:, None], channels, axis=1) if channels > 1 else pcm
    buf = io.BytesIO()
    wavfile.write(buf, int(rate), pcm)
    return buf.getvalue()


class KeywordSpotterUI:
    """Record / upload -> chip -> plots, for notebook 06.

    ``ui.widget`` is the control (microphone button when anywidget is available, a WAV upload
    and an output area); ``ui.process_wav(bytes)`` does the same without a browser.

    Example:
        >>> # ui = KeywordSpotterUI(pcm_fw); display(ui.widget)
    """

    def __init__(self, pcm_fw: Any, seconds: float = 2.0,
                 show: Callable[[Any], None] | None = None):
        import ipywidgets as widgets

        self.pcm_fw = pcm_fw
        self.last: tuple[Recording, Any] | None = None
        self.output = widgets.Output()
        self.upload = widgets.FileUpload(accept=".wav", multiple=False, description="Upload WAV")
        self.upload.observe(self._on_upload, names="value")
        try:
            self.recorder = make_recorder(seconds)
            self.recorder.observe(self._on_take, names="takes")
            mic: Any = self.recorder
        except ImportError as exc:
            self.recorder = None
            mic = widgets.HTML(f"<i>{exc}</i>")
        self._show = show
        self.widget = widgets.VBox([widgets.HBox([mic, self.upload]), self.output])

    def _render(self, rec: Recording, res: Any) -> str:
        import matplotlib.pyplot as plt

        from .streaming import DEFAULT_IGNORE

        text = describe(rec, res)
        with self.output:
            self.output.clear_output(wait=True)
            print(text)
            fig = plot_spotting(rec, res, self.pcm_fw.classes, DEFAULT_IGNORE)
            (self._show or (lambda f: plt.show()))(fig)
            plt.close(fig)
        return text

    def process(self, data: np.ndarray, sample_rate: int) -> str:
        """Convert, stream through the chip, draw; returns the summary (or the problem) as text."""
        try:
            rec, res = spot_keywords(self.pcm_fw, data, sample_rate)
        except AudioInputError as exc:
            with self.output:
                self.output.clear_output(wait=True)
                print(f"cannot use this audio: {exc}")
            return f"cannot use this audio: {exc}"
        self.last = (rec, res)
        return self._render(rec, res)

    def process_wav(self, wav: bytes | str) -> str:
        """A WAV file (bytes or path) through the chip; returns the summary.

        Example:
            >>> # print(ui.process_wav(bundled_clip_wav(audio.audio[0])))
        """
        try:
            data, rate = read_wav(wav)
        except AudioInputError as exc:
            with self.output:
                self.output.clear_output(wait=True)
                print(f"cannot use this audio: {exc}")
            return f"cannot use this audio: {exc}"
        return self.process(data, rate)

    def _on_take(self, change: dict) -> None:
        rec = self.recorder
        try:
            data, rate = decode_browser_audio(rec.pcm_b64, rec.sample_rate)
        except AudioInputError as exc:
            rec.status = f"cannot use this audio: {exc}"
            return
        text = self.process(data, rate)
        rec.status = text.splitlines()[-1]

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if files:
            self.process_wav(bytes(files[0]["content"]))
