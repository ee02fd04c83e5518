"""Kaldi filter bank front end as plain tensor ops, exportable to TorchScript, ONNX and TensorRT.

Reproduces ``torchaudio.compliance.kaldi.fbank(..., htk_compat=True, use_energy=False,
window_type='hanning', dither=0.0)``, the AST authors' call, then AST's padding and normalisation.

Everything Kaldi does to a frame before the power spectrum is linear: DC removal, pre-emphasis,
the Hanning window, zero padding to 512 and the real DFT. We fold all of it into one precomputed
``(window, 2 * n_bins)`` matrix, so the front end is: framing (``unfold``), one MatMul, square and
add, one MatMul with the mel banks, log. No STFT/DFT operator appears in an exported graph.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

# Normalisation statistics of the AST authors' datasets: name -> (mean, std) of the log-mel fbank.
NORM_PRESETS: dict[str, tuple[float, float]] = {
    "audioset": (-4.2677393, 4.5689974),
    "esc50": (-6.6268077, 5.358466),
    "speechcommands": (-6.845978, 5.5654526),
}

FLOAT32_EPS = torch.finfo(torch.float32).eps  # Kaldi/torchaudio floor before the log


@dataclass(frozen=True)
class FrontEndConfig:
    sample_rate: int = 16000
    num_mel_bins: int = 128
    target_length: int = 1024
    mean: float = NORM_PRESETS["audioset"][0]
    std: float = NORM_PRESETS["audioset"][1]
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0  # <= 0: offset from Nyquist, as in Kaldi
    normalize: bool = True

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def hop_size(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()  # Kaldi's round_to_power_of_two

    @property
    def window_samples(self) -> int:
        """Samples that fill exactly ``target_length`` frames: the model's analysis window."""
        return (self.target_length - 1) * self.hop_size + self.window_size

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi produces with ``snip_edges=True``."""
        if num_samples < self.window_size:
            return 0
        return 1 + (num_samples - self.window_size) // self.hop_size

    def to_dict(self) -> dict:
        return asdict(self)


def mel_scale(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def kaldi_mel_banks(num_bins: int, fft_size: int, sample_rate: int, low_freq: float, high_freq: float) -> torch.Tensor:
    """Triangular mel filters on Kaldi's mel scale, shape (num_bins, fft_size // 2 + 1), float64.

    The Nyquist column is zero, as in Kaldi. With 128 bins at 16 kHz some low filters contain no
    FFT bin; their energy is 0 and the log gives the float32-epsilon floor, like torchaudio.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range low_freq={low_freq}, high_freq={high_freq} for {sample_rate} Hz")
    num_fft_bins = fft_size // 2
    mel_low, mel_high = mel_scale(torch.tensor([low_freq, high_freq], dtype=torch.float64))
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * torch.arange(num_bins, dtype=torch.float64)[:, None]
    center, right = left + delta, left + 2 * delta
    mel = mel_scale(sample_rate / fft_size * torch.arange(num_fft_bins, dtype=torch.float64))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.cat([banks, torch.zeros(num_bins, 1, dtype=torch.float64)], dim=1)


def frame_to_spectrum_basis(window_size: int, fft_size: int, preemphasis: float) -> torch.Tensor:
    """One linear map from a raw frame to [Re | Im] of its DFT, shape (window_size, 2 * n_bins), float64.

    Composes, in Kaldi's order: remove the frame's mean, pre-emphasis (the first sample uses
    itself as predecessor), symmetric Hanning window, zero padding to ``fft_size``, real DFT.
    """
    n = window_size
    eye = torch.eye(n, dtype=torch.float64)
    remove_dc = eye - 1.0 / n
    shift = torch.diag(torch.ones(n - 1, dtype=torch.float64), diagonal=-1)
    shift[0, 0] = 1.0  # x[-1] := x[0]
    preemph = eye - preemphasis * shift
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(n, dtype=torch.float64) / (n - 1))
    n_bins = fft_size // 2 + 1
    k = torch.arange(n_bins, dtype=torch.float64)
    angle = 2 * math.pi / fft_size * torch.outer(torch.arange(n, dtype=torch.float64), k)
    dft = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1)  # (n, 2 * n_bins); padding adds nothing
    frame_map = window[:, None] * (preemph @ remove_dc)  # acts on a frame as a column vector
    return frame_map.T @ dft  # row vector of samples @ basis = spectrum


class KaldiFbank(nn.Module):
    """Waveforms (B, N) at ``sample_rate`` -> normalised log-mel features (B, target_length, num_mel_bins).

    ``num_samples`` (B,) optionally gives each row's valid length when rows were zero padded to a
    common N: frames past it are treated as missing and padded in the feature domain, exactly as
    a short clip is padded in training, so a batch of padded clips gives each clip's own features.
    """

    def __init__(self, config: FrontEndConfig | None = None, **kwargs):
        super().__init__()
        self.config = config = config if config is not None else FrontEndConfig(**kwargs)
        if config.window_size < 2 or config.hop_size < 1:
            raise ValueError(f"frame length/shift too short at {config.sample_rate} Hz")
        basis = frame_to_spectrum_basis(config.window_size, config.fft_size, config.preemphasis)
        banks = kaldi_mel_banks(
            config.num_mel_bins, config.fft_size, config.sample_rate, config.low_freq, config.high_freq
        )
        self.register_buffer("spectrum_basis", basis.float(), persistent=False)
        self.register_buffer("mel_banks", banks.T.float(), persistent=False)

    def log_mel(self, waveform: torch.Tensor, num_samples: torch.Tensor | None = None) -> torch.Tensor:
        """Kaldi fbank without padding or normalisation: (B, N) -> (B, frames, bins).

        Always float32: the power spectrum and its log are the numerically sensitive part.
        """
        c = self.config
        waveform = waveform.float()
        # Removing the waveform's mean changes nothing mathematically (each frame loses its own
        # mean below) but keeps a large DC offset from eating float32 precision.
        if num_samples is None:
            waveform = waveform - waveform.mean(dim=-1, keepdim=True)
        else:  # mean over each row's valid samples only; padding stays zero
            valid = torch.arange(waveform.shape[-1], device=waveform.device) < num_samples[:, None]
            # Clamp in float: TensorRT's Clip takes float types only.
            count = num_samples.to(waveform.dtype).clamp(min=1.0)[:, None]
            mean = (waveform * valid).sum(dim=-1, keepdim=True) / count
            waveform = torch.where(valid, waveform - mean, torch.zeros_like(waveform))
        frames = waveform.unfold(-1, c.window_size, c.hop_size)  # (B, T, window)
        spectrum = frames @ self.spectrum_basis  # (B, T, 2 * n_bins)
        re, im = spectrum.chunk(2, dim=-1)
        power = re * re + im * im
        return torch.log(torch.clamp(power @ self.mel_banks, min=FLOAT32_EPS))

    def forward(self, waveform: torch.Tensor, num_samples: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        fbank = self.log_mel(waveform, num_samples)
        if num_samples is not None:
            n_valid = torch.div(num_samples - c.window_size, c.hop_size, rounding_mode="floor") + 1
            frame_ok = torch.arange(fbank.shape[1], device=fbank.device) < n_valid[:, None]
            fbank = torch.where(frame_ok[..., None], fbank, torch.zeros_like(fbank))
        fbank = pad_or_crop(fbank, c.target_length)
        if c.normalize:
            fbank = (fbank - c.mean) / (2.0 * c.std)
        return fbank


def pad_or_crop(fbank: torch.Tensor, target_length: int) -> torch.Tensor:
    """Zero-pad (in the log-mel domain, before normalisation) or crop frames at the end, as AST does."""
    n_frames = fbank.shape[1]
    if n_frames < target_length:
        return torch.nn.functional.pad(fbank, (0, 0, 0, target_length - n_frames))
    return fbank[:, :target_length]
