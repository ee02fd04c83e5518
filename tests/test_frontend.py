"""The Kaldi filter bank front end against torchaudio's (the AST authors' call) and kaldi-native-fbank."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import KALDI_CASES, load_fixture

from ast_deploy import FrontEndConfig, KaldiFbank
from ast_deploy.frontend import pad_or_crop

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Agreement of independent float32 implementations, in log-mel units (fixtures README).
MAX_ABS = 2e-2
MEAN_ABS = 5e-4
BIG = 100_000  # a target_length that never crops


def log_mel(waveform: np.ndarray | torch.Tensor, sample_rate: int, num_mel_bins: int = 128) -> np.ndarray:
    fe = KaldiFbank(
        FrontEndConfig(sample_rate=sample_rate, num_mel_bins=num_mel_bins, normalize=False, target_length=BIG)
    )
    return fe.log_mel(torch.as_tensor(waveform)[None])[0].numpy()


def assert_fbank_close(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    error = np.abs(ours.astype(np.float64) - reference)
    assert error.max() <= MAX_ABS and error.mean() <= MEAN_ABS, f"max {error.max():.3g}, mean {error.mean():.3g}"


@pytest.mark.parametrize("case", sorted(KALDI_CASES))
def test_matches_torchaudio_reference(case):
    """``torchaudio.compliance.kaldi.fbank`` as the authors call it: max abs <= 2e-2, mean abs <= 5e-4."""
    ref = load_fixture("kaldi_fbank_reference.pt")[case]
    assert ref["sample_rate"] == KALDI_CASES[case]["sample_rate"]
    ours = log_mel(ref["waveform"], ref["sample_rate"])
    assert list(ours.shape) == KALDI_CASES[case]["fbank_shape"]
    assert_fbank_close(ours, ref["fbank"].numpy())


def seeded_signal(kind: str, sample_rate: int = 16000, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    if kind == "speech-like":  # gliding voiced harmonics with formant-like weights, syllable envelope, breath noise
        f0 = 120 + 40 * np.sin(2 * np.pi * 1.3 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        formants = (700, 1200, 2600)
        x = sum(
            np.sin(k * phase + rng.uniform(0, 2 * np.pi))
            * sum(np.exp(-(((k * 120 - f) / 150) ** 2)) for f in formants)
            / k
            for k in range(1, 40)
        )
        x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(t.size)
    elif kind == "noise":
        x = 0.1 * rng.standard_normal(t.size)
    elif kind == "tones":
        x = sum(
            a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
            for a, f in ((0.3, 300), (0.2, 1234.5), (0.1, 5000))
        )
    elif kind == "dc-offset":
        x = 0.8 + 0.05 * rng.standard_normal(t.size)
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


def knf_log_mel(x: np.ndarray, sample_rate: int, num_mel_bins: int) -> np.ndarray:
    """kaldi-native-fbank with the options of the AST authors' torchaudio call."""
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hanning"
    opts.frame_opts.snip_edges = True
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.mel_opts.num_bins = num_mel_bins
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0  # Nyquist
    opts.use_energy = False
    opts.htk_compat = True
    opts.use_log_fbank = True
    opts.use_power = True
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(sample_rate, x.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


@pytest.mark.parametrize("num_mel_bins", [64, 80])
@pytest.mark.parametrize("kind", ["speech-like", "noise", "tones", "dc-offset"])
@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_matches_kaldi_native_fbank(kind, num_mel_bins, sample_rate):
    x = seeded_signal(kind, sample_rate)
    ours = log_mel(x, sample_rate, num_mel_bins)
    assert ours.shape == (FrontEndConfig(sample_rate=sample_rate).num_frames(x.size), num_mel_bins)
    assert_fbank_close(ours, knf_log_mel(x, sample_rate, num_mel_bins))


@pytest.fixture(scope="module")
def frontend() -> KaldiFbank:
    return KaldiFbank(FrontEndConfig(target_length=100)).eval()  # 100 frames: 16240 samples


def test_batched_equals_per_row(frontend):
    kinds = ["speech-like", "noise", "tones"]
    n = frontend.config.window_samples
    batch = torch.stack([torch.from_numpy(seeded_signal(kind, seconds=n / 16000)) for kind in kinds])
    lengths = torch.tensor([n, 9000, 401])
    for num_samples in (None, lengths):
        batched = frontend(batch, num_samples)
        rows = torch.cat(
            [frontend(batch[i : i + 1], None if num_samples is None else num_samples[i : i + 1]) for i in range(3)]
        )
        torch.testing.assert_close(batched, rows, rtol=0, atol=1e-5)


@pytest.mark.parametrize("length", [400, 401, 5000, 9000, 16239])
def test_num_samples_pads_like_the_clip_alone(frontend, length):
    """A clip zero padded to N with ``num_samples`` gives the clip's own features, padded in the fbank domain."""
    c = frontend.config
    clip = torch.from_numpy(seeded_signal("speech-like", seconds=length / 16000, seed=length))[None]
    padded = torch.nn.functional.pad(clip, (0, c.window_samples - length))
    with_lengths = frontend(padded, torch.tensor([length]))
    torch.testing.assert_close(with_lengths, frontend(clip), rtol=0, atol=1e-5)
    n_frames = c.num_frames(length)
    pad_value = (0.0 - c.mean) / (2 * c.std)  # log-mel zero padding, then normalisation
    assert torch.all(with_lengths[0, n_frames:] == pad_value)
    assert not torch.any(with_lengths[0, :n_frames] == pad_value)
    # Without num_samples the zeros would count as signal: the frames past the clip differ.
    assert not torch.allclose(frontend(padded), with_lengths, atol=1e-3)


def test_clip_shorter_than_a_frame_is_all_padding(frontend):
    c = frontend.config
    padded = torch.zeros(1, c.window_samples)
    padded[0, :300] = torch.randn(300)
    features = frontend(padded, torch.tensor([300]))
    assert torch.all(features == (0.0 - c.mean) / (2 * c.std))


@pytest.mark.parametrize("target_length", [30, 200])
def test_normalisation_and_pad_or_crop(speech, target_length):
    """Features are ``(fbank - mean) / (2 std)`` after zero padding or cropping at the end."""
    config = FrontEndConfig(target_length=target_length, mean=-3.0, std=2.5)
    x = torch.from_numpy(speech[: 160 * 150])[None]  # 148 frames
    fbank = KaldiFbank(dataclasses.replace(config, normalize=False))(x)
    features = KaldiFbank(config)(x)
    raw = KaldiFbank(config).log_mel(x)
    assert raw.shape[1] == 148
    assert features.shape == (1, target_length, 128)
    expected = pad_or_crop(raw, target_length)
    if target_length < 148:
        torch.testing.assert_close(expected, raw[:, :target_length], rtol=0, atol=0)
    else:
        assert torch.all(expected[:, 148:] == 0)
    torch.testing.assert_close(fbank, expected, rtol=0, atol=0)
    torch.testing.assert_close(features, (expected + 3.0) / 5.0, rtol=0, atol=1e-6)


def test_frame_count_and_window(frontend):
    c = frontend.config
    assert (c.window_size, c.hop_size, c.fft_size) == (400, 160, 512)
    for n, frames in [(399, 0), (400, 1), (559, 1), (560, 2), (16000, 98)]:
        assert c.num_frames(n) == frames
        if frames:
            assert frontend.log_mel(torch.zeros(1, n)).shape[1] == frames
    assert c.num_frames(c.window_samples) == c.target_length
    assert c.num_frames(c.window_samples - 1) == c.target_length - 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_jit_trace_matches_eager(frontend):
    n = frontend.config.window_samples
    example = (torch.randn(2, n), torch.tensor([n, 7000]))
    traced = torch.jit.trace(frontend, example)
    for batch, lengths in [(3, [n, 4000, 400]), (1, [12345])]:
        x = torch.randn(batch, n)
        num_samples = torch.tensor(lengths)
        torch.testing.assert_close(traced(x, num_samples), frontend(x, num_samples), rtol=0, atol=1e-6)
