"""Streaming on the emulated chip: rings, inference schedule, decisions and bad input, with a stub
network (class 1 = "something loud"), so no trained model is needed."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("unicorn")

from tinyml_helpers.deploy import frontend as F  # noqa: E402
from tinyml_helpers.deploy import streaming as S  # noqa: E402

CLASSES = ["_silence_", "loud", "_unknown_"]


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    return S.build_pcm_firmware(None, tmp_path_factory.mktemp("stream_stub"), CLASSES,
                                input_scale=0.0415, input_zero_point=-5,
                                config=S.StreamConfig(smooth=2, threshold=0.6, refractory_s=1.0))


def expected_counts(n: int, cfg: S.StreamConfig) -> tuple[int, int]:
    """(frames, inferences) after n samples, by the schedule tm_stream.c implements."""
    frames = 0 if n < 640 else 1 + (n - 640) // 320
    inferences, next_infer = 0, 16000
    for k in range(49, frames + 1):
        if 640 + 320 * (k - 1) >= next_infer:
            inferences += 1
            next_infer += cfg.infer_hop
    return frames, inferences


def _ram_writes_outside_own_variables(fw, before: bytes, after: bytes) -> list[int]:
    """RAM addresses that changed but belong to none of the firmware's variables or its stack."""
    from tinyml_helpers.deploy.toolchain import RAM_ORIGIN

    # what pushing samples may write: the rings, the work buffers, the state and logs, the
    # network's arena and the stack; the DMA buffer is written by the host (checked separately)
    names = ["tm_stream_state", "tm_audio_ring", "tm_feat_ring", "tm_fe_buf_a", "tm_fe_buf_b", "tm_post_hist",
             "tm_post_smooth", "tm_log_end", "tm_log_out", "tm_det_end", "tm_det_label", "tm_det_score",
             "tm_arena", "tm_pcm_in"]
    own = [(fw.firmware.symbol(n), fw.firmware.symbol(n) + fw.symbol_sizes[n]) for n in names]
    own.append((fw.firmware.symbol("_sstack"), fw.firmware.symbol("_estack")))
    changed = np.flatnonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8)) + RAM_ORIGIN
    return [int(a) for a in changed if not any(lo <= a < hi for lo, hi in own)]


def test_every_length_runs_on_schedule_and_stays_in_its_rings(fw):
    from tinyml_helpers.deploy.toolchain import RAM_ORIGIN

    rng = np.random.default_rng(0)
    size = fw.firmware.symbol("_estack") - RAM_ORIGIN
    # every length up to 1300 samples in steps of 7, then up to 3 s in steps of 331 (a prime: all phases)
    lengths = (list(range(0, 1300, 7)) + list(range(1300, 3 * 16000 + 1, 331))
               + [15999, 16000, 16001, 19999, 20160, 24000])
    for n in lengths:
        pcm = rng.integers(-32768, 32768, n).astype(np.int16)
        fw.reset()
        before = fw.firmware.read(RAM_ORIGIN, size)
        fw.push(pcm)
        after = fw.firmware.read(RAM_ORIGIN, size)
        st = fw.state()
        assert (st["samples"], st["frames"], st["inferences"]) == (n, *expected_counts(n, fw.config)), n
        assert _ram_writes_outside_own_variables(fw, before, after) == [], n
        if n:   # the firmware only reads the DMA buffer: it still holds the last chunk
            last = pcm[(n - 1) // fw.config.pcm_chunk * fw.config.pcm_chunk:]
            dma = np.frombuffer(fw.firmware.read(fw.firmware.symbol("tm_pcm_in"), 2 * len(last)), np.int16)
            np.testing.assert_array_equal(dma, last)
        ring = np.frombuffer(fw.firmware.read(fw.firmware.symbol("tm_audio_ring"), 2 * 1024), np.int16)
        idx = np.arange(max(0, n - 1024), n)
        np.testing.assert_array_equal(ring[idx & 1023], pcm[idx])
        if n >= 16000 and n % 320 == 0:
            host = F.host_int8_features(pcm[n - 16000:], fw.spec)
            assert np.mean(fw.features() == host) >= 0.99


def test_run_collects_every_inference_in_order(fw):
    pcm = np.zeros(40000, np.int16)
    res = fw.run(pcm)
    frames, inferences = expected_counts(40000, fw.config)
    assert len(res.outputs) == inferences == len(res.end_samples) and res.frames == frames
    assert np.all(np.diff(res.end_samples) > 0)
    assert res.detections == []


def test_a_loud_sound_is_detected_once_per_refractory_period(fw):
    t = np.arange(4 * 16000) / 16000
    wave = np.concatenate([np.zeros(16000), 0.5 * np.sin(2 * np.pi * 1000 * t)])
    res = fw.run(F.pcm_from_float(wave))
    assert res.detections, "a loud tone must trigger class 1 of the stub network"
    times = [d[0] for d in res.detections]
    assert all(w == "loud" and p >= 0.6 for _, w, p in res.detections)
    assert times[0] > 0.5 and np.all(np.diff(times) >= fw.config.refractory_s - 1e-9)


def test_silence_and_clipping_do_not_break_it(fw):
    assert fw.run(np.zeros(3 * 16000, np.int16)).detections == []
    square = np.where(np.arange(3 * 16000) % 40 < 20, 32767, -32768).astype(np.int16)
    res = fw.run(square)
    assert len(res.outputs) == expected_counts(len(square), fw.config)[1]


@pytest.mark.parametrize("bad, match", [(np.zeros(100, np.float32), "int16"),
                                        (np.zeros((2, 100), np.int16), "mono 1-D")])
def test_push_rejects_bad_samples(fw, bad, match):
    with pytest.raises(ValueError, match=match):
        fw.push(bad)


def test_negative_count_is_refused_by_the_firmware(fw):
    from unicorn.arm_const import UC_ARM_REG_R0, UC_ARM_REG_R1

    fw.reset()
    fw.firmware.uc.reg_write(UC_ARM_REG_R0, fw.firmware.symbol("tm_pcm_in"))
    fw.firmware.uc.reg_write(UC_ARM_REG_R1, 0xFFFFFFFF)   # n = -1
    fw.firmware._call("tm_push_samples")
    assert fw.firmware.uc.reg_read(UC_ARM_REG_R0) == 0xFFFFFFFF
    assert fw.state()["samples"] == 0


def test_classify_clip_wants_one_window(fw):
    with pytest.raises(ValueError, match="one window of 16000"):
        fw.classify_clip(np.zeros(8000, np.int16))


def test_budget_counts_a_frame_and_an_inference(fw):
    b = fw.count_budget(np.zeros(16000, np.int16))
    assert 10_000 < b["frontend_instructions"] < 500_000
    assert b["frontend_cycles"] >= b["frontend_instructions"]


@pytest.mark.parametrize("kwargs, match", [(dict(audio_ring=1000), "power of two"), (dict(smooth=0), "smooth"),
                                           (dict(threshold=1.5), "threshold"), (dict(refractory_s=-1), "refractory")])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.StreamConfig(**kwargs)


def test_build_needs_a_quantisation_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="input_scale"):
        S.build_pcm_firmware(None, tmp_path, CLASSES)


def test_small_audio_ring_is_refused():
    with pytest.raises(ValueError, match="hold one frame"):
        S.stream_config_h(F.FrontendSpec.logmel(0.05, 0), S.StreamConfig(audio_ring=512), CLASSES, 49, 0, 1960, 0.1)


def test_memory_breakdown_counts_the_rings_and_tables(fw):
    m = fw.memory_breakdown()
    assert m["audio_ring_bytes"] == 2 * fw.config.audio_ring
    assert m["feature_ring_bytes"] == 49 * 40
    assert m["fft_buffer_bytes"] == 2 * 640 * 4
    assert m["tm_fe_levels_bytes"] == 256 * 4 and m["table_flash_bytes"] > 640 * 4


@pytest.mark.parametrize("args", [(1, 1, 0), (-1, 1, 64e6)])
def test_duty_cycle_rejects_bad_values(args):
    with pytest.raises(ValueError):
        S.duty_cycle(*args)


def test_run_can_collect_every_frame_the_chip_computed(fw):
    rng = np.random.default_rng(4)
    pcm = rng.integers(-3000, 3000, 20000).astype(np.int16)
    res = fw.run(pcm, collect_features=True)
    host = F.host_int8_features(pcm, fw.spec)
    assert res.features.shape == host.shape == (res.frames, 40)
    assert np.mean(res.features == host) >= 0.99
    assert len(res.outputs) == expected_counts(len(pcm), fw.config)[1]


def test_classify_clips_in_threads_equals_one_by_one(fw):
    rng = np.random.default_rng(5)
    clips = [rng.integers(-2000, 2000, 16000).astype(np.int16) for _ in range(3)]
    outs, feats = fw.classify_clips(clips, workers=2)
    for i, clip in enumerate(clips):
        np.testing.assert_array_equal(outs[i], fw.classify_clip(clip))
        np.testing.assert_array_equal(feats[i], fw.features())
    with pytest.raises(ValueError, match="workers"):
        fw.classify_clips(clips, workers=0)


def test_the_schedule_survives_the_sample_counter_wrapping(fw):
    """After 2^32 samples (74 h at 16 kHz) the 32-bit counter wraps; frames and inferences go on."""
    fw.reset()
    addr = fw.firmware.symbol("tm_stream_state")
    fw.firmware.write(addr, np.array([2**32 - 7000], np.uint32).tobytes())   # samples, first field
    pcm = np.random.default_rng(6).integers(-3000, 3000, 40000).astype(np.int16)
    fw.push(pcm)
    st = fw.state()
    assert (st["frames"], st["inferences"]) == expected_counts(len(pcm), fw.config)
    assert st["samples"] == (2**32 - 7000 + len(pcm)) % 2**32
    host = F.host_int8_features(pcm[-16000:], fw.spec)
    assert np.mean(fw.features() == host) >= 0.99


def test_the_firmware_reads_ram_only_inside_its_buffers(fw):
    """Every RAM read while streaming lands in the rings, work buffers, state, the DMA chunk,
    the arena or the stack (a read hook on all of RAM, a few lengths: it is slow)."""
    from unicorn import UC_HOOK_MEM_READ

    from tinyml_helpers.deploy.toolchain import RAM_ORIGIN

    names = ["tm_stream_state", "tm_audio_ring", "tm_feat_ring", "tm_fe_buf_a", "tm_fe_buf_b", "tm_post_hist",
             "tm_post_smooth", "tm_log_end", "tm_log_out", "tm_det_end", "tm_det_label", "tm_det_score",
             "tm_arena", "tm_pcm_in"]
    sym = fw.firmware.symbol
    allowed = [(sym(n), sym(n) + fw.symbol_sizes[n]) for n in names] + [(sym("_sstack"), sym("_estack"))]
    outside: list[int] = []
    reads = [0]

    def on_read(uc, access, address, size, value, user):
        reads[0] += 1
        if not any(lo <= address and address + size <= hi for lo, hi in allowed):
            outside.append(address)

    uc = fw.firmware.uc
    rng = np.random.default_rng(7)
    for n in (0, 639, 640, 16000, 20500):
        fw.reset()
        uc.ctl_flush_tb()
        hook = uc.hook_add(UC_HOOK_MEM_READ, on_read, begin=RAM_ORIGIN, end=sym("_estack"))
        try:
            fw.push(rng.integers(-32768, 32768, n).astype(np.int16))
        finally:
            uc.hook_del(hook)
            uc.ctl_flush_tb()
        assert outside == [], (n, [hex(a) for a in outside[:5]])
    assert reads[0] > 100_000   # the hook did watch the front end at work
