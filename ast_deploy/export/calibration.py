"""Calibration inputs for post-training quantisation (``ast-deploy export --calibration``).

Quantisers with static activation scales (``openvino-int8``) pick each scale from the activations
the network produces on these inputs, so they should be audio from the deployment domain. Each
``--calibration`` path is an audio file, a folder (every audio file under it, recursively; a folder
per class is one), or a labelled manifest that :mod:`ast_deploy.manifests` reads (the authors' JSON
with the model's labels, or a CSV); labels are not used. Audio is decoded, resampled and cut into
the model's windows exactly as at prediction time (:func:`ast_deploy.pipeline.cut_windows`), and
fbank graphs get the same front end's features.

Without ``--calibration`` the default is :data:`DEFAULT_CLIPS` seeded synthetic signals from
:func:`ast_deploy.parity.synthetic_signals` (speech-like harmonics, noise, tones and sweeps,
near-silence, impulses, short clips) with seed :data:`DEFAULT_SEED`, different from the seed of
parity's default inputs so that parity never checks on the calibration data. Of the user's audio
at most :data:`MAX_CLIPS` windows are used, spread evenly over what the paths hold.

With ``--calibration`` the default signals are used *as well*: static scales only cover what they
have seen, and a model calibrated on one kind of audio alone (the quickstart's keywords, say) then
clips the noise, tones and near-silence that the parity check (and real deployments) also bring:
worst-clip cosine 0.91 on the quickstart test's tone model calibrated on tones alone, 0.9998 with both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio
from ..errors import InputError
from ..frontend import FrontEndConfig, KaldiFbank
from ..manifests import AUDIO_EXTENSIONS
from ..runtime.base import InputKind
from ..windows import cut_windows

DEFAULT_CLIPS = 64
DEFAULT_SEED = 1  # parity's default inputs use seed 0
MAX_CLIPS = 300  # NNCF's own default subset size; more costs time and rarely moves a scale


@dataclass(frozen=True)
class Calibration:
    windows: np.ndarray  # (N, samples) float32, zero padded
    lengths: np.ndarray  # (N,) valid samples per window
    source: str  # what the windows came from, for the manifest

    def to_dict(self) -> dict:
        return {"source": self.source, "clips": len(self.windows)}

    def graph_inputs(self, kind: InputKind, frontend: FrontEndConfig) -> list[dict[str, np.ndarray]]:
        """One batch-1 feed per window, named like the inputs of a graph of ``kind`` (fbank graphs: the
        features of ``frontend``)."""
        feeds = []
        if kind == "fbank":
            fbank_of = KaldiFbank(frontend)
            with torch.inference_mode():
                fbank = fbank_of(torch.from_numpy(self.windows), torch.from_numpy(self.lengths)).numpy()
            return [{"fbank": fbank[i : i + 1]} for i in range(len(fbank))]
        for window, length in zip(self.windows, self.lengths):
            feeds.append({"waveform": window[None], "num_samples": np.asarray([length], dtype=np.int64)})
        return feeds


def default_calibration(window: int, sample_rate: int) -> Calibration:
    from ..parity.inputs import synthetic_signals

    windows, lengths = synthetic_signals(DEFAULT_CLIPS, window, sample_rate, DEFAULT_SEED)
    return Calibration(
        windows, lengths, f"default: {DEFAULT_CLIPS} synthetic signals (ast_deploy.parity, seed {DEFAULT_SEED})"
    )


def calibration_files(path: Path, labels: Sequence[str]) -> list[Path]:
    """The audio files behind one ``--calibration`` path; bad paths raise :class:`InputError`."""
    if not path.exists():
        raise InputError(f"--calibration {path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise InputError(f"--calibration {path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
        return files
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        return [path]
    if path.suffix.lower() not in (".json", ".csv"):
        raise InputError(
            f"--calibration {path}: neither audio ({', '.join(AUDIO_EXTENSIONS)}) nor a manifest (.json, .csv)"
        )
    from ..manifests import read_split
    from ..parity.inputs import model_label_set

    # JSON manifests name labels by mid, so they need the model's label set; a CSV brings its own.
    split = read_split(path, model_label_set(list(labels)) if path.suffix.lower() == ".json" else None, True)
    return [example.path for example in split.examples]


def load_calibration(paths: Sequence[str | Path], labels: Sequence[str], window: int, sample_rate: int) -> Calibration:
    """The windows of the audio behind ``paths`` (at most :data:`MAX_CLIPS`, evenly spread), plus the
    :data:`DEFAULT_CLIPS` default signals."""
    files = [f for p in paths for f in calibration_files(Path(p), labels)]
    if len(files) > MAX_CLIPS:  # decode only what can be used: one window per file is enough then
        files = [files[i] for i in np.linspace(0, len(files) - 1, MAX_CLIPS).round().astype(int)]
    windows, lengths = [], []
    for f in files:
        try:
            samples = load_audio(f, sample_rate)
        except InputError as e:
            raise InputError(f"--calibration: {e}") from None
        w, n, _ = cut_windows(samples, window, window)
        windows.append(w)
        lengths.append(n)
    windows_, lengths_ = np.concatenate(windows), np.concatenate(lengths)
    if len(windows_) > MAX_CLIPS:
        keep = np.linspace(0, len(windows_) - 1, MAX_CLIPS).round().astype(int)
        windows_, lengths_ = windows_[keep], lengths_[keep]
    default = default_calibration(window, sample_rate)
    source = ", ".join(str(p) for p in paths)
    return Calibration(
        np.concatenate([windows_, default.windows]),
        np.concatenate([lengths_, default.lengths]),
        f"{source} ({len(files)} audio files, {len(windows_)} windows) + {default.source}",
    )


__all__ = ["DEFAULT_CLIPS", "MAX_CLIPS", "Calibration", "default_calibration", "load_calibration"]
