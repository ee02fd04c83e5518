"""Audio in: decoding, PCM scaling, channel mix-down and band-limited resampling to the model's rate."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import SPEECH_WAV, write_wav

from ast_deploy import InputError, load_audio, prepare_audio

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def test_16k_wav_is_read_as_is(speech):
    int16, rate = sf.read(str(SPEECH_WAV), dtype="int16")
    assert rate == 16000
    x = load_audio(SPEECH_WAV)
    assert x.dtype == np.float32 and x.shape == (66399,)
    np.testing.assert_array_equal(x, int16.astype(np.float32) / 32768)
    np.testing.assert_array_equal(x, speech)


@pytest.mark.parametrize(("dtype", "low", "high"), [("int16", -1.0, 32767 / 32768), ("uint8", -1.0, 127 / 128)])
def test_integer_pcm_is_scaled_to_unit_range(dtype, low, high):
    info = np.iinfo(dtype)
    x = prepare_audio(np.array([info.min, info.max, (int(info.max) + int(info.min) + 1) // 2], dtype=dtype), 16000)
    np.testing.assert_allclose(x, [low, high, 0.0], atol=1e-7)


def test_stereo_is_averaged(tmp_path):
    left, right = tone(440, 16000), tone(1000, 16000, amplitude=0.25)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)
    np.testing.assert_allclose(prepare_audio(np.stack([left, right], axis=1), 16000), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize(
    ("rate", "subtype", "ext"), [(44100, "PCM_16", "wav"), (48000, "PCM_24", "flac"), (8000, "FLOAT", "wav")]
)
def test_resampling_keeps_duration_and_pitch(tmp_path, rate, subtype, ext):
    path = write_wav(tmp_path / f"tone.{ext}", tone(1000.0, rate, seconds=2.0), rate, subtype)
    x = load_audio(path)
    assert x.dtype == np.float32
    assert abs(x.size - 32000) <= 1
    assert peak_frequency(x, 16000) == pytest.approx(1000.0, abs=1.0)
    middle = x[4000:-4000]  # away from the resampler's edges
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=1e-2)


def test_head_reads_only_the_start_and_equals_the_whole_file_read(tmp_path):
    """``load_audio(..., head=N)`` (parity's first window per manifest clip): the whole-file read's
    first N samples, without decoding the rest. Exact at the model's rate; through the resampler the
    kept samples see the same filter neighbourhood (HEAD_MARGIN_SECONDS), so within 1e-6."""
    whole = load_audio(SPEECH_WAV)
    np.testing.assert_array_equal(load_audio(SPEECH_WAV, head=16000), whole[:16000])
    np.testing.assert_array_equal(load_audio(SPEECH_WAV, head=10 * 16000), whole)  # longer than the file
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal((44100 * 6, 2))).astype(np.float32)
    path = write_wav(tmp_path / "stereo44k.flac", noise, 44100, "PCM_24")
    whole = load_audio(path)
    head = load_audio(path, head=16240)
    assert head.shape == (16240,)
    np.testing.assert_allclose(head, whole[:16240], atol=1e-6, rtol=0)


def test_resampling_is_band_limited():
    """A 7 kHz tone at 44.1 kHz survives; a 10 kHz one (above the new Nyquist) is removed, not aliased."""
    kept = prepare_audio(tone(7000, 44100), 44100)
    removed = prepare_audio(tone(10000, 44100), 44100)
    assert np.sqrt(np.mean(kept[2000:-2000] ** 2)) > 0.3
    assert np.sqrt(np.mean(removed[2000:-2000] ** 2)) < 1e-3


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((2, 3, 4), np.float32), "shape"),
        (np.array(["a", "b"]), "numeric"),
        (np.zeros(0, np.float32), "no samples"),
        (np.array([0.0, np.nan, 0.0], np.float32), "NaN or infinite samples (first at sample 1)"),
        (np.array([0.0, 0.0, -np.inf], np.float64), "first at sample 2"),
    ],
)
def test_bad_arrays_are_refused(samples, message):
    with pytest.raises(InputError) as err:
        prepare_audio(samples, 16000, where="clip")
    assert str(err.value).startswith("clip: ") and message in str(err.value)


@pytest.mark.parametrize("rate", [0, -16000, float("nan"), 16000.5, None])
def test_sample_rate_must_be_a_positive_integer(rate):
    with pytest.raises(InputError, match="sample rate must be a positive integer"):
        prepare_audio(np.zeros(1600, np.float32), rate)
