"""Tests for tinyml_helpers.data: bundled keyword audio, features, loaders, images, downloads."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyml_helpers import data
from tinyml_helpers.data import augment, downloads, features, images, keywords, manifest
from tinyml_helpers.files import ChecksumError, sha256_file

REPO_DATA = Path(__file__).resolve().parent.parent / "data"


# ----------------------------------------------------------------------------- keyword set

def test_keyword_classes_follow_mlperf_tiny():
    classes = data.keyword_classes()
    assert classes[:10] == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    assert classes[10:] == ["_silence_", "_unknown_"]


def test_split_is_speaker_disjoint_and_covers_five_engine_families():
    rows = keywords.read_clip_rows()
    speakers = {s: {r["speaker"] for r in rows if r["split"] == s and r["speaker"]} for s in data.SPLITS}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    info = data.keyword_set_info()
    assert info == json.loads((REPO_DATA / "keywords" / "info.json").read_text())
    assert data.engine_families() == ("espeak", "mbrola", "festival", "flite", "pico")
    for family in data.engine_families():
        in_family = [r for r in rows if r["family"] == family]
        assert {r["split"] for r in in_family} >= {"train", "test"}, f"{family} lacks a train or test voice"
        labels = {r["label"] for r in in_family}
        assert labels == set(data.keyword_classes()), f"{family} misses classes {set(data.keyword_classes()) - labels}"
    unknown_words = {r["word"] for r in rows if r["label"] == "_unknown_"}
    assert len(unknown_words) >= 30, "the unknown class needs many different words"
    assert not unknown_words & set(keywords.KEYWORDS)
    assert 4000 <= len(rows) <= 9000


def test_one_person_behind_voices_of_two_families_stays_in_one_split():
    # Festival's kal diphones and Flite's kal/kal16 are one person, as are the two slt voices: if the
    # planner split them apart, "unseen" test voices would have been heard in training.
    from tinyml_helpers.data import engines

    rows = keywords.read_clip_rows()
    split_of_person: dict[str, set[str]] = {}
    for r in rows:
        if r["voice"]:
            family, name = r["voice"].split(":", 1)
            split_of_person.setdefault(engines.Voice(family, name).person, set()).add(r["split"])
    assert {p: s for p, s in split_of_person.items() if len(s) > 1} == {}
    assert {"cmu:kal", "cmu:slt"} <= set(split_of_person)


def test_planner_keeps_a_person_in_the_split_another_family_gave_them(monkeypatch):
    # Regression: splits were drawn family by family, so nothing stopped Flite's kal landing in
    # train while Festival's kal (the same person) was a test voice.
    def split_by_family(speakers, settings, rng):
        return {s: "test" if s.startswith("festival:") else "train" for s in speakers}

    monkeypatch.setattr(keywords, "_split_speakers", split_by_family)
    plan = keywords.plan_keyword_set(keywords.GeneratorSettings(families=("festival", "flite"), clips_per_family=120))
    split_of_voice = {c.voice: c.split for c in plan.clips if c.voice}
    assert split_of_voice["flite:kal"] == split_of_voice["flite:kal16"] == split_of_voice["flite:slt"] == "test"
    assert split_of_voice["flite:awb"] == split_of_voice["flite:rms"] == "train"


def test_load_keyword_audio_smoke_subset():
    clips = data.load_keyword_audio("train", smoke=True)
    assert clips.audio.shape == (16 * 12, 16000) and clips.audio.dtype == np.float32
    assert clips.labels.dtype == np.int64
    assert np.bincount(clips.labels, minlength=12).tolist() == [16] * 12
    assert np.abs(clips.audio).max() <= 1.0
    silence = clips.labels == data.keyword_classes().index("_silence_")
    assert all(v == "" for v, s in zip(clips.voices, silence) if s)
    assert all(v.split(":")[0] in data.engine_families() for v, s in zip(clips.voices, silence) if not s)
    assert set(clips.families) <= set(data.engine_families())
    # speech is louder than the silence clips, which are noise alone
    assert np.sqrt((clips.audio[~silence] ** 2).mean()) > np.sqrt((clips.audio[silence] ** 2).mean())
    assert "train" in repr(clips)


def test_load_keyword_audio_is_deterministic():
    a = data.load_keyword_audio("val", smoke=True)
    b = data.load_keyword_audio("val", smoke=True)
    assert np.array_equal(a.audio, b.audio) and a.voices == b.voices


def test_unknown_split_kind_and_dataset_are_explained():
    with pytest.raises(ValueError, match="valid splits: train, val, test"):
        data.keyword_features("dev")
    with pytest.raises(ValueError, match="valid kinds: logmel, mfcc"):
        data.keyword_features("train", kind="spectrogram")
    with pytest.raises(ValueError, match="valid datasets: synthetic, speech_commands"):
        data.load_keyword_audio("train", dataset="librispeech")
    with pytest.raises(ValueError, match="valid splits"):
        data.load_keyword_audio("validation")


def test_compose_clip_places_word_at_offset():
    word = np.ones(1000, np.float32)
    clip = keywords.compose_clip(word, offset=5000, gain_db=-6.0, noise="white", snr_db=60.0, noise_seed=3)
    energy = np.abs(clip)
    assert energy[5000:6000].mean() > 100 * energy[:4000].mean()
    assert abs(energy[5000:6000].max() - 10 ** (-6 / 20)) < 0.01
    with pytest.raises(ValueError, match="does not fit"):
        keywords.compose_clip(np.ones(2000, np.float32), 15000, -6.0, "white", 30.0, 0)


def test_render_word_and_bad_voice():
    audio = keywords.render_word("stop", keywords.EspeakVoice("en-us", "f2", rate=150))
    assert audio.dtype == np.float32 and 0.15 < len(audio) / 16000 < 1.0
    assert abs(np.abs(audio).max() - 0.9) < 1e-3
    with pytest.raises(ValueError, match="no voice"):
        keywords.render_word("stop", "xx-nowhere+m1")
    with pytest.raises(ValueError, match="non-empty"):
        keywords.render_word("  ")


SMALL = keywords.GeneratorSettings(families=("espeak",), espeak_variants=("m1", "f1", "croak"),
                                   clips_per_family=36, seed=5)


def test_generator_is_deterministic_and_voice_disjoint(tmp_path):
    first = keywords.write_keyword_set(tmp_path / "a", SMALL, in_fresh_process=True)
    second = keywords.write_keyword_set(tmp_path / "b", SMALL, in_fresh_process=True)
    assert first["files"] == second["files"]  # byte-identical files
    assert first["counts"]["total"] == 3 * 12
    assert sum(len(v) for v in first["voices"].values()) == 3
    assert first["families"]["espeak"]["dropped_renderings"] == {"silent": 0, "clipped": 0}


def test_generator_with_a_missing_engine_names_the_package_and_writes_nothing(tmp_path, monkeypatch):
    from tinyml_helpers.data import engines

    monkeypatch.setattr(engines.shutil, "which", lambda name: None)
    settings = keywords.GeneratorSettings(families=("espeak", "pico"), clips_per_family=24)
    with pytest.raises(engines.EngineMissingError, match="libttspico-utils.*contrib non-free"):
        keywords.write_keyword_set(tmp_path / "kw", settings, in_fresh_process=False)
    assert not (tmp_path / "kw").exists() and list(tmp_path.iterdir()) == []


def test_silent_and_clipped_renderings_are_dropped_and_counted(tmp_path, monkeypatch):
    real = keywords._render_espeak

    def damaged(renderings):
        audio, version = real(renderings)
        audio[0] = np.zeros_like(audio[0])  # the first voice says "yes" silently
        audio[1] = np.clip(audio[1] * 50, -1, 1)  # and "no" clipped
        return audio, version

    monkeypatch.setattr(keywords, "_render_espeak", damaged)
    info = keywords.write_keyword_set(tmp_path / "kw", SMALL, in_fresh_process=False)
    assert info["families"]["espeak"]["dropped_renderings"] == {"silent": 1, "clipped": 1}
    assert info["counts"]["total"] == 3 * 12 - 2


def test_interrupted_generation_leaves_the_old_corpus_untouched(tmp_path, monkeypatch):
    keywords.write_keyword_set(tmp_path / "kw", SMALL, in_fresh_process=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "kw").iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(keywords, "_describe", crash)
    with pytest.raises(KeyboardInterrupt):
        keywords.write_keyword_set(tmp_path / "kw", SMALL, in_fresh_process=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "kw").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["kw"]  # no staging folder left behind


def test_takes_vary_rate_pitch_and_room():
    word = keywords.render_word("stop", "en-us+m3")
    slow, fast = keywords.make_take(word, rate=0.8), keywords.make_take(word, rate=1.25)
    assert len(fast) < len(word) < len(slow)
    wet = keywords.make_take(word, room=5)
    assert len(wet) > len(word)  # the reverberant tail
    h = keywords.room_impulse_response(5)
    assert h[0] == 1.0 and np.isfinite(h).all()
    with pytest.raises(ValueError, match="room must be"):
        keywords.room_impulse_response(99)
    with pytest.raises(ValueError, match="empty word"):
        keywords.make_take(np.zeros(0, np.float32))


def test_spec_augment_masks_bands_and_frames():
    rng = np.random.default_rng(1)
    x = np.ones((1, 49, 40), np.float32)
    masked = [augment.spec_augment(x, rng) for _ in range(20)]
    assert all(m.shape == x.shape for m in masked)
    assert any((m[0] == 0).all(axis=0).any() for m in masked)  # a whole band masked
    assert any((m[0] == 0).all(axis=1).any() for m in masked)  # a whole frame masked


def test_loaders_keep_only_the_requested_families_and_subset():
    loaders = data.keyword_loaders(batch_size=16, smoke=True, families=["pico"], spec_augment=True)
    families = data.keyword_families("train", smoke=True)
    assert len(loaders["train"].dataset) == int((families == "pico").sum())
    assert len(loaders["test"].dataset) == 96  # test is never filtered
    small = data.keyword_loaders(batch_size=16, smoke=True, max_train_clips=48)
    assert len(small["train"].dataset) == 48
    with pytest.raises(ValueError, match="families must be"):
        data.keyword_loaders(smoke=True, families=["sam"])
    with pytest.raises(ValueError, match="max_train_clips"):
        data.keyword_loaders(smoke=True, max_train_clips=3)


# ----------------------------------------------------------------------------- features

def test_keyword_features_shapes_and_cache(tmp_path):
    X, y = data.keyword_features("test", smoke=True)
    assert X.shape == (96, 1, 49, 40) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.isfinite(X).all() and -4 < X.mean() < 4
    cached = list(features.feature_cache_dir().glob("logmel_test_smoke_*.npz"))
    assert len(cached) == 1
    X2, y2 = data.keyword_features("test", smoke=True)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    Xm, _ = data.keyword_features("test", kind="mfcc", smoke=True)
    assert Xm.shape == (96, 1, 49, 10)


def test_damaged_cache_entry_is_recomputed():
    X, _ = data.keyword_features("val", kind="mfcc", smoke=True)
    (path,) = features.feature_cache_dir().glob("mfcc_val_smoke_*.npz")
    path.write_bytes(b"not an npz")
    X2, _ = data.keyword_features("val", kind="mfcc", smoke=True)
    assert np.array_equal(X, X2)


def test_compute_features_matches_documented_front_end():
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    X = data.compute_features(tone, "logmel", normalize=False)
    assert X.shape == (1, 1, 49, 40)
    centres = features.feature_params("logmel")
    import librosa

    mel_freqs = librosa.mel_frequencies(centres.n_mels + 2, fmin=centres.fmin, fmax=centres.fmax)[1:-1]
    assert abs(mel_freqs[X[0, 0].mean(axis=0).argmax()] - 1000) < 150  # energy in the 1 kHz band
    with pytest.raises(ValueError, match=r"expected audio of shape \(N, 16000\)"):
        data.compute_features(np.zeros((2, 8000), np.float32))
    with pytest.raises(ValueError, match="valid kinds"):
        data.compute_features(tone, "cqt")


# ----------------------------------------------------------------------------- loaders

def test_keyword_loaders_batches_and_seeded_order():
    import torch

    loaders = data.keyword_loaders(batch_size=32, smoke=True)
    assert set(loaders) == {"train", "val", "test"}
    x, y = next(iter(loaders["train"]))
    assert tuple(x.shape) == (32, 1, 49, 40) and x.dtype == torch.float32 and y.dtype == torch.int64
    again = data.keyword_loaders(batch_size=32, smoke=True)
    assert torch.equal(next(iter(again["train"]))[1], y)
    assert len(loaders["test"].dataset) == 96
    with pytest.raises(ValueError, match="batch_size"):
        data.keyword_loaders(batch_size=0)


def test_keyword_loaders_with_augmentation():
    loaders = data.keyword_loaders(batch_size=64, kind="mfcc", augment=True, augment_copies=1, smoke=True)
    x, y = next(iter(loaders["train"]))
    assert tuple(x.shape[1:]) == (1, 49, 10)
    assert len(loaders["train"].dataset) == 192


# ----------------------------------------------------------------------------- augmentation

def test_mix_at_snr_is_exact_and_checks_shapes():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(16000).astype(np.float32)
    noise = augment.make_noise("pink", 16000, rng)
    for snr in (0.0, 10.0, 25.0):
        mixed = augment.mix_at_snr(speech, noise, snr)
        assert abs(augment.snr_of(speech, mixed - speech) - snr) < 1e-3
    with pytest.raises(ValueError, match="same shape"):
        augment.mix_at_snr(speech, noise[:100], 10.0)


def test_coloured_noise_slopes():
    rng = np.random.default_rng(1)
    freqs = np.fft.rfftfreq(16000, 1 / 16000)
    band = lambda x, lo, hi: (np.abs(np.fft.rfft(x)) ** 2)[(freqs >= lo) & (freqs < hi)].mean()
    white, pink, brown = (augment.coloured_noise(16000, e, rng) for e in (0.0, 1.0, 2.0))
    ratio = lambda x: 10 * np.log10(band(x, 100, 200) / band(x, 3200, 6400))
    assert abs(ratio(white)) < 2  # flat
    assert 11 < ratio(pink) < 15  # 1/f: ~3 dB per octave over 5 octaves
    assert 24 < ratio(brown) < 36  # 1/f^2: ~6 dB per octave
    with pytest.raises(ValueError, match="exponent"):
        augment.coloured_noise(100, 5.0, rng)


def test_noise_kinds_and_errors():
    rng = np.random.default_rng(2)
    for kind in ("white", "pink", "brown", "hum"):
        assert abs(augment.rms(augment.make_noise(kind, 4000, rng)) - 1) < 1e-3
    assert augment.make_noise("babble", 4000, rng, clips=rng.standard_normal((3, 4000))).shape == (4000,)
    with pytest.raises(ValueError, match="needs clips"):
        augment.make_noise("babble", 4000, rng)
    with pytest.raises(ValueError, match="valid kinds"):
        augment.make_noise("traffic", 4000, rng)
    with pytest.raises(ValueError, match="valid kinds"):
        augment.KeywordAugmenter(noise_kinds=("rain",))


def test_time_shift_pads_with_silence():
    assert augment.time_shift(np.arange(1.0, 6.0), -2).tolist() == [3.0, 4.0, 5.0, 0.0, 0.0]
    assert augment.time_shift(np.arange(1.0, 4.0), 5).tolist() == [0.0, 0.0, 0.0]


def test_augmenter_is_seeded():
    clips = np.random.default_rng(0).standard_normal((4, 16000)).astype(np.float32)
    a = augment.KeywordAugmenter(seed=7)(clips, babble_pool=clips)
    b = augment.KeywordAugmenter(seed=7)(clips, babble_pool=clips)
    assert np.array_equal(a, b) and not np.array_equal(a, clips)
    with pytest.raises(ValueError, match=r"\(N, samples\)"):
        augment.KeywordAugmenter()(clips[0])


# ----------------------------------------------------------------------------- images

def test_fashion_mnist_subset_full_and_smoke():
    sizes = {"train": 4000, "val": 1000, "test": 1000}
    for split, n in sizes.items():
        X, y = data.fashion_mnist_subset(split, smoke=False)
        assert X.shape == (n, 28, 28) and X.dtype == np.uint8 and y.dtype == np.int64
        assert np.bincount(y, minlength=10).tolist() == [n // 10] * 10
    X, y = data.fashion_mnist_subset("train", smoke=True)
    assert X.shape == (160, 28, 28)
    with pytest.raises(ValueError, match="valid splits"):
        data.fashion_mnist_subset("holdout")
    assert data.fashion_classes()[9] == "Ankle boot"


# ----------------------------------------------------------------------------- missing / corrupted

@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private data/ folder of symlinks that a test may break without touching the repo."""
    root = tmp_path / "data"
    for path in REPO_DATA.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):  # a data script's file lock is not data
            target = root / path.relative_to(REPO_DATA)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    monkeypatch.setenv("TINYML_DATA", str(root))
    return root


def test_missing_keyword_file_names_file_and_script(data_copy):
    (data_copy / "keywords" / "speech_val.flac").unlink()
    with pytest.raises(FileNotFoundError, match=r"speech_val\.flac.*make_keywords"):
        data.keyword_features("val", smoke=True)


def test_missing_image_file_names_script(data_copy):
    (data_copy / "images" / "fashion_mnist_subset.npz").unlink()
    with pytest.raises(FileNotFoundError, match="make_fashion_subset"):
        data.fashion_mnist_subset("train")


def test_corrupted_file_raises_checksum_error(data_copy):
    csv_path = data_copy / "keywords" / "clips.csv"
    text = csv_path.read_text()
    csv_path.unlink()
    csv_path.write_text(text.replace("yes", "yep", 1))
    with pytest.raises(ChecksumError, match=r"clips\.csv is corrupted"):
        data.load_keyword_audio("train", smoke=True)
    npz = data_copy / "images" / "fashion_mnist_subset.npz"
    payload = npz.read_bytes()
    npz.unlink()
    npz.write_bytes(payload[:-10] + b"0" * 10)
    with pytest.raises(ChecksumError, match="git checkout"):
        data.fashion_mnist_subset("val")


def test_manifest_helpers(data_copy):
    assert manifest.verify_manifest() == []
    extra = data_copy / "models" / "new.pt"
    extra.parent.mkdir()
    extra.write_bytes(b"weights")
    with pytest.raises(ChecksumError, match="not listed"):
        manifest.verify_file("models/new.pt")
    (data_copy / "manifest.json").unlink()
    shutil.copy(REPO_DATA / "manifest.json", data_copy / "manifest.json")
    manifest.update_manifest({"models/new.pt": None}, made_by="python -m x", licence="MIT", what="test")
    assert manifest.verify_file("models/new.pt") == extra
    assert manifest.load_manifest()["files"]["models/new.pt"]["sha256"] == sha256_file(extra)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        manifest.update_manifest({"models/none.pt": None}, made_by="x", licence="MIT")


# ----------------------------------------------------------------------------- downloads

def test_download_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_BLOCK_NETWORK", "1")
    with pytest.raises(downloads.NoInternetError, match="no internet: .*bundled synthetic set"):
        data.download("http://198.51.100.7/archive.tar.gz", "0" * 64, tmp_path / "archive.tar.gz")
    assert not (tmp_path / "archive.tar.gz").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_download_verifies_sha256_of_local_files(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"tiny dataset")
    good = sha256_file(source)
    dest = tmp_path / "cache" / "copy.bin"
    with pytest.raises(ChecksumError, match="expected"):
        data.download(source.as_uri(), "1" * 64, dest, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert data.download(source.as_uri(), good, dest, progress=False).read_bytes() == b"tiny dataset"
    dest.write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="Delete it"):
        data.download(source.as_uri(), good, dest)
    with pytest.raises(ValueError, match="64 hex"):
        data.download(source.as_uri(), "abc", tmp_path / "x")


def test_download_gunzip_checks_decoded_content(tmp_path):
    import gzip

    source = tmp_path / "idx.gz"
    source.write_bytes(gzip.compress(b"0123456789"))
    import hashlib

    sha = hashlib.sha256(b"0123456789").hexdigest()
    dest = data.download(source.as_uri(), sha, tmp_path / "idx", progress=False, gunzip=True)
    assert dest.read_bytes() == b"0123456789"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"not gzip")
    with pytest.raises(ChecksumError, match="gzip"):
        data.download(plain.as_uri(), sha, tmp_path / "idx2", progress=False, gunzip=True)
    assert not (tmp_path / "idx2").exists()


def test_speech_commands_is_opt_in_and_offline_error_is_clear(monkeypatch):
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.keyword_features("test", dataset="speech_commands", smoke=True)
    monkeypatch.setenv("TINYML_BLOCK_NETWORK", "1")
    with pytest.raises(downloads.NoInternetError, match="no internet"):
        data.load_keyword_audio("test", dataset="speech_commands", download=True)


def test_torchvision_sets_are_opt_in():
    with pytest.raises(FileNotFoundError, match="download=True"):
        images.torchvision_fashion_mnist(train=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        images.torchvision_cifar10(train=False)


def _fake_speech_commands(root: Path) -> None:
    """A miniature Speech Commands v2 tree: 3 speakers x a few words, lists, background noise."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "cat", "marvin"]
    val, test = [], []
    for word in words:
        (root / word).mkdir(parents=True)
        for speaker in ("aaaa1111", "bbbb2222", "cccc3333"):
            rel = f"{word}/{speaker}_nohash_0.wav"
            sf.write(root / rel, (0.1 * rng.standard_normal(12000)).astype(np.float32), 16000)
            (val if speaker == "bbbb2222" else test if speaker == "cccc3333" else []).append(rel)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", rng.standard_normal(40000).astype(np.float32) * 0.1, 16000)


def test_speech_commands_loader_on_a_miniature_archive(tmp_path, monkeypatch):
    import hashlib
    import tarfile

    from tinyml_helpers.data import speech_commands

    tree = tmp_path / "tree"
    _fake_speech_commands(tree)
    archive = tmp_path / "mini.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(tree.rglob("*")):
            tar.add(path, arcname=path.relative_to(tree).as_posix(), recursive=False)
    monkeypatch.setenv("TINYML_DOWNLOADS", str(tmp_path / "downloads"))
    monkeypatch.setattr(speech_commands, "ARCHIVE_URL", archive.as_uri())
    monkeypatch.setattr(speech_commands, "ARCHIVE_SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    clips = data.load_keyword_audio("test", dataset="speech_commands", download=True, smoke=False)
    # 10 keywords + 1 unknown (2 words, subsampled to a keyword's count) + 1 silence, one speaker
    assert clips.audio.shape == (12, 16000)
    assert sorted(set(clips.voices) - {""}) == ["cccc3333"]
    assert np.bincount(clips.labels, minlength=12).tolist() == [1] * 12
    X, y = data.keyword_features("val", kind="mfcc", dataset="speech_commands", smoke=False)
    assert X.shape == (12, 1, 49, 10) and y.dtype == np.int64
    train = data.load_keyword_audio("train", dataset="speech_commands", smoke=False)
    assert set(train.voices) - {""} == {"aaaa1111"}
    # End to end: the one setting (dataset=) gives loaders a model trains and is evaluated on.
    import torch

    from tinyml_helpers import training
    from tinyml_helpers.models.dscnn import DSCNN

    loaders = data.keyword_loaders(batch_size=4, dataset="speech_commands", smoke=False, augment=True,
                                   augment_copies=1, spec_augment=True)
    assert len(loaders["train"].dataset) == len(loaders["test"].dataset) == 12
    torch.manual_seed(0)
    result = training.train_classifier(DSCNN(num_classes=12), loaders, epochs=1, progress=False,
                                       save_checkpoint=False, num_classes=12)
    assert 0.0 <= training.evaluate(result.model, loaders["test"]).accuracy <= 1.0
    with pytest.raises(ValueError, match="synthetic corpus only"):
        data.keyword_loaders(dataset="speech_commands", families=["espeak"], smoke=False)


def test_keyword_error_shares_split_keyword_clips_three_ways_and_refuse_non_counts():
    import numpy as np

    from tinyml_helpers import data

    confusion = np.zeros((12, 12), int)
    confusion[0, 0], confusion[0, 1], confusion[0, 11], confusion[0, 10] = 6, 2, 1, 1   # "yes" said 10 times
    confusion[11, 11], confusion[11, 3] = 3, 1                                           # 4 unknown words
    confusion[10, 10] = 5                                                                # 5 noise clips
    shares = data.keyword_error_shares(confusion)
    assert shares == {"keyword_right": 0.6, "keyword_as_other_keyword": 0.2, "keyword_missed": 0.2,
                      "unknown_accepted": 0.25, "silence_right": 1.0}
    assert data.top_confusions(confusion, n=2) == [("_unknown_", "down", 0.25), ("yes", "no", 0.2)]
    for bad, match in ((np.zeros((10, 10)), "12x12"), (np.full((12, 12), np.nan), "finite"),
                       (-np.ones((12, 12)), ">= 0")):
        with pytest.raises(ValueError, match=match):
            data.keyword_error_shares(bad)
    with pytest.raises(ValueError, match="_silence_ and _unknown_"):
        data.keyword_error_shares(np.eye(2), classes=["cat", "dog"])


def test_hardest_first_sorts_by_accuracy_and_refuses_impossible_tallies():
    from tinyml_helpers import data

    assert data.hardest_first({"a": [3, 4], "b": [1, 4], "c": [0, 1]}, min_clips=2) == [("b", 0.25, 4), ("a", 0.75, 4)]
    with pytest.raises(ValueError, match="not a tally"):
        data.hardest_first({"a": [5, 4]})
    for bad in ([1, 2, 3], [float("nan"), 4]):
        with pytest.raises(ValueError, match="two whole numbers"):
            data.hardest_first({"a": bad})


def test_clips_on_demand_are_the_loaded_clips_and_refuse_bad_indices():
    # Notebook 01 held the whole test split (about 100 MB) only so that its widget could play one
    # clip at a time; on_demand builds each clip when it is read, and must build the same clip.
    import numpy as np

    from tinyml_helpers import data

    whole = data.load_keyword_audio("test", smoke=True)
    lazy = data.load_keyword_audio("test", smoke=True, on_demand=True)
    assert len(lazy.audio) == len(whole.audio) and np.array_equal(lazy.labels, whole.labels)
    for i in (0, 7, len(whole.audio) - 1, -1):
        assert np.array_equal(lazy.audio[i], whole.audio[i])
    with pytest.raises(IndexError, match="of a split with"):
        lazy.audio[len(whole.audio)]
    with pytest.raises(TypeError, match="integer"):
        lazy.audio[0:2]
