"""Strong-labelled soundscapes made on the spot: spoken keywords and synthetic sounds over backgrounds.

What scaper (the DCASE soundscape generator) does, written out here because scaper 1.6.5 cannot be
installed from the project's own files: it needs ``soxbindings`` (built from source against libsox's
headers: no wheel for current Pythons) or the ``sox`` binary for every event it renders, and neither
comes with pip. The recipe is scaper's: a background, foreground events drawn from labelled sources
at a random time and SNR, and the event list written as the reference (JAMS there, the DCASE TSV
here, with every drawn parameter in ``meta.json``).

* keywords: the quickstart's ten words (``training/quickstart_data.py``) spoken by espeak-ng, each
  split with its own voices (a validation or test voice is never a training voice, so a model made
  by the quickstart hears new speakers), the same random "microphone";
* synthetic sounds: ``beep`` (a harmonic tone), ``chirp`` (a rising or falling sweep) and ``knock``
  (a train of 2-5 damped noise bursts), random in pitch, length and envelope;
* backgrounds: white, pink or brown noise, mains hum, or a babble of non-keyword sentences;
* events do not overlap (one source at a time: a keyword classifier with softmax scores cannot say
  two words at once), with at least ``min_gap`` seconds between them; SNR 5-20 dB for keywords,
  0-15 dB for sounds, against the background's RMS;
* onset and offset of a keyword are those of the trimmed utterance (above 2 % of its peak), of a
  sound those of its envelope, exact to the sample.

Everything is seeded: the same seed gives the same files (given the same espeak-ng).

Layout::

    OUT/audio/SPLIT/SPLIT_NNNN.wav     16 kHz mono 16-bit, ``duration`` seconds
    OUT/SPLIT.tsv                      DCASE strong labels: filename onset offset event_label
    OUT/SPLIT_durations.tsv            filename duration
    OUT/meta.json                      parameters, and every soundscape's drawn events
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.progress import Progress
from scipy.signal import butter, sosfilt

from ast_deploy.errors import InputError
from ast_deploy.fileio import atomic_dir, write_json
from ast_deploy.sed import write_durations, write_reference

from .quickstart_data import (
    ACCENTS,
    BABBLE,
    KEYWORDS,
    SAMPLE_RATE,
    VOICES,
    colored_noise,
    espeak_binary,
    hum,
    microphone,
    synthesise,
    trim_silence,
)

GENERATOR_VERSION = 1
SOUNDS = ("beep", "chirp", "knock")
BACKGROUNDS = ("white", "pink", "brown", "hum", "babble")
KEYWORD_SNR_DB = (5.0, 20.0)
SOUND_SNR_DB = (0.0, 15.0)


@dataclass
class EventSpec:
    """One foreground event as drawn (and, after rendering, its exact onset and offset)."""

    label: str
    kind: str  # "keyword" | "sound"
    onset: float  # seconds
    offset: float
    snr_db: float
    seed: int
    source: dict = field(default_factory=dict)  # voice, speed, pitch / frequency, length...


# --- synthetic sounds --------------------------------------------------------------------------------


def _envelope(n: int, rng: np.random.Generator) -> np.ndarray:
    """Attack 5-30 ms, then a sustain that decays slightly, release 10-60 ms."""
    attack = max(1, int(rng.uniform(0.005, 0.03) * SAMPLE_RATE))
    release = max(1, int(rng.uniform(0.01, 0.06) * SAMPLE_RATE))
    env = np.ones(n, np.float64) * np.exp(-np.linspace(0, rng.uniform(0, 1.5), n))
    env[:attack] *= np.linspace(0, 1, min(attack, n))[: min(attack, n)]
    env[n - min(release, n) :] *= np.linspace(1, 0, min(release, n))
    return env


def beep(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    seconds = rng.uniform(0.15, 0.6)
    f0 = rng.uniform(500, 2500)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * f0 * k * t) for k in (1, 2, 3) if f0 * k < 7500)
    return x * _envelope(len(t), rng), {"f0": f0, "seconds": seconds}


def chirp(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    seconds = rng.uniform(0.3, 0.8)
    lo, hi = rng.uniform(300, 900), rng.uniform(1800, 5000)
    f_start, f_end = (lo, hi) if rng.random() < 0.5 else (hi, lo)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    freq = f_start * (f_end / f_start) ** (t / seconds)  # exponential sweep
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    return np.sin(phase) * _envelope(len(t), rng), {"f_start": f_start, "f_end": f_end, "seconds": seconds}


def knock(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    hits = int(rng.integers(2, 6))
    period = rng.uniform(0.08, 0.18)
    decay = rng.uniform(0.01, 0.04)
    centre = rng.uniform(150, 900)
    burst_n = int(min(period, 6 * decay) * SAMPLE_RATE)
    sos = butter(2, [centre * 0.6, centre * 1.6], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    n = int(((hits - 1) * period) * SAMPLE_RATE) + burst_n
    x = np.zeros(n)
    for h in range(hits):
        start = int(h * period * SAMPLE_RATE)
        burst = sosfilt(sos, rng.standard_normal(burst_n)) * np.exp(-np.arange(burst_n) / SAMPLE_RATE / decay)
        x[start : start + burst_n] += burst * rng.uniform(0.6, 1.0)
    return x, {"hits": hits, "period": period, "centre_hz": centre}


SOUND_MAKERS = {"beep": beep, "chirp": chirp, "knock": knock}


def background(kind: str, n: int, rng: np.random.Generator, babble: list[np.ndarray]) -> np.ndarray:
    """Unit-RMS background of ``n`` samples."""
    if kind == "hum":
        return hum(n, rng)
    if kind == "babble" and babble:
        x = 0.05 * colored_noise(n, rng, 1.0)
        for _ in range(4):  # four talkers, each a looped sentence at a random phase
            s = babble[int(rng.integers(len(babble)))]
            reps = np.tile(s, n // max(1, len(s)) + 2)
            start = int(rng.integers(0, len(s)))
            x = x + reps[start : start + n] / (np.sqrt(np.mean(s**2)) + 1e-12)
        return x / (np.sqrt(np.mean(x**2)) + 1e-12)
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(kind, 1.0)
    return colored_noise(n, rng, exponent)


# --- planning and rendering ----------------------------------------------------------------------------


def plan_events(
    rng: np.random.Generator,
    duration: float,
    split: str,
    keywords: tuple[str, ...],
    sounds: tuple[str, ...],
    events: tuple[int, int],
    min_gap: float,
    keyword_share: float,
) -> list[EventSpec]:
    """Draw the foreground events of one soundscape: labels, sources, SNRs and intended onsets.
    Each event gets a slot of at most 1.2 s (a spoken keyword is shorter); slots never overlap."""
    count = int(rng.integers(events[0], events[1] + 1))
    slot = 1.2
    free = duration - 0.2 - count * (slot + min_gap)
    if free < 0:
        count = max(0, int((duration - 0.2) // (slot + min_gap)))
        free = duration - 0.2 - count * (slot + min_gap)
    gaps = np.sort(rng.uniform(0, free, count))  # free time before each event, cumulative
    specs = []
    for i in range(count):
        onset = 0.1 + float(gaps[i]) + i * (slot + min_gap)
        use_keyword = bool(keywords) and (not sounds or rng.random() < keyword_share)
        seed = int(rng.integers(2**31))
        if use_keyword:
            voices = VOICES[split]
            label = str(keywords[int(rng.integers(len(keywords)))])
            source = {
                "voice": f"{rng.choice(ACCENTS)}+{voices[int(rng.integers(len(voices)))]}",
                "speed": int(rng.integers(120, 211)),
                "pitch": int(rng.integers(15, 86)),
            }
            snr = rng.uniform(*KEYWORD_SNR_DB)
            specs.append(EventSpec(label, "keyword", onset, onset + slot, snr, seed, source))
        else:
            label = str(sounds[int(rng.integers(len(sounds)))])
            specs.append(EventSpec(label, "sound", onset, onset + slot, rng.uniform(*SOUND_SNR_DB), seed))
    return specs


def render(
    specs: list[EventSpec], duration: float, bg_kind: str, seed: int, binary: str | None, babble: list[np.ndarray]
) -> tuple[np.ndarray, list[EventSpec]]:
    """The soundscape's samples (float32, peak at a random -20..-1 dBFS) and its events with their
    exact onsets and offsets."""
    rng = np.random.default_rng(seed)
    n = round(duration * SAMPLE_RATE)
    mix = background(bg_kind, n, rng, babble)
    placed = []
    for spec in specs:
        erng = np.random.default_rng(spec.seed)
        if spec.kind == "keyword":
            src = spec.source
            x = trim_silence(synthesise(spec.label, src["voice"], src["speed"], src["pitch"], binary))
            if erng.random() < 0.7:
                x = microphone(x, erng)
        else:
            x, params = SOUND_MAKERS[spec.label](erng)
            spec.source = {k: float(v) for k, v in params.items()}
        x = np.asarray(x, np.float64)[: int(1.2 * SAMPLE_RATE)]  # an event never leaves its slot
        start = round(spec.onset * SAMPLE_RATE)
        x = x[: max(0, n - start)]
        if not len(x):
            continue
        rms = np.sqrt(np.mean(x**2)) + 1e-12
        mix[start : start + len(x)] += x / rms * 10 ** (spec.snr_db / 20)  # background RMS is 1
        spec.onset, spec.offset = start / SAMPLE_RATE, (start + len(x)) / SAMPLE_RATE
        placed.append(spec)
    gain = 10 ** (rng.uniform(-20, -1) / 20)
    return (mix / (np.abs(mix).max() + 1e-9) * gain).astype(np.float32), placed


def generate(
    out: str | Path,
    splits: dict[str, int] | None = None,
    duration: float = 10.0,
    seed: int = 0,
    keywords: tuple[str, ...] = KEYWORDS,
    sounds: tuple[str, ...] = SOUNDS,
    events: tuple[int, int] = (2, 5),
    min_gap: float = 0.3,
    keyword_share: float = 0.7,
    workers: int = 2,
    progress: bool = True,
) -> dict:
    """Write soundscapes to ``out`` (atomically), ``splits`` {name: count} with names from
    ``train``/``valid``/``test`` (their voices are the quickstart's of that split). ``keywords=()``
    makes sounds only (no espeak-ng needed)."""
    splits = {"valid": 40, "test": 40} if splits is None else dict(splits)
    unknown = [s for s in splits if s not in VOICES]
    if unknown:
        raise InputError(f"unknown split {unknown[0]!r}; soundscape splits are {', '.join(VOICES)}")
    bad = [w for w in (*keywords, *sounds) if w not in KEYWORDS and w not in SOUND_MAKERS]
    if bad:
        raise InputError(f"unknown event class {bad[0]!r}; keywords {', '.join(KEYWORDS)}, sounds {', '.join(SOUNDS)}")
    if not (keywords or sounds):
        raise InputError("no event classes: give keywords or sounds")
    if duration < 2.0 or events[0] < 0 or events[1] < events[0]:
        raise InputError("soundscapes need duration >= 2 s and 0 <= min events <= max events")
    binary = espeak_binary() if keywords else None
    out = Path(out)
    rng = np.random.default_rng(seed)
    jobs = []
    for split, count in splits.items():
        for i in range(count):
            specs = plan_events(rng, duration, split, keywords, sounds, events, min_gap, keyword_share)
            jobs.append((split, i, specs, str(rng.choice(BACKGROUNDS)), int(rng.integers(2**31))))
    babble: list[np.ndarray] = []
    if binary is not None:
        brng = np.random.default_rng(seed + 1)
        babble = [
            trim_silence(synthesise(text, f"en+{brng.choice(VOICES['train'])}", 170, 50, binary)) for text in BABBLE
        ]
    records: dict[tuple[str, int], dict] = {}
    with atomic_dir(out, overwrite=True) as tmp:

        def job(item) -> None:
            split, i, specs, bg, scape_seed = item
            name = f"audio/{split}/{split}_{i:04d}.wav"
            samples, placed = render(specs, duration, bg, scape_seed, binary, babble)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(tmp / name, samples, SAMPLE_RATE, subtype="PCM_16")
            records[(split, i)] = {
                "file": name,
                "split": split,
                "duration": len(samples) / SAMPLE_RATE,
                "background": bg,
                "seed": scape_seed,
                "events": [asdict(s) for s in placed],
            }

        bar = Progress(console=Console(stderr=True), disable=not progress, transient=True)
        with bar, ThreadPoolExecutor(max(1, workers)) as pool:
            task = bar.add_task("rendering soundscapes", total=len(jobs))
            for _ in pool.map(job, jobs):  # espeak-ng runs as a subprocess: threads suffice
                bar.advance(task)
        for split in splits:
            scapes = [records[k] for k in sorted(records) if k[0] == split]
            write_reference(
                tmp / f"{split}.tsv",
                {r["file"]: [(e["onset"], e["offset"], e["label"]) for e in r["events"]] for r in scapes},
            )
            write_durations(tmp / f"{split}_durations.tsv", {r["file"]: r["duration"] for r in scapes})
        meta = {
            "generator": "ast_deploy_training.soundscapes",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "splits": splits,
            "duration": duration,
            "keywords": list(keywords),
            "sounds": list(sounds),
            "events_per_soundscape": list(events),
            "min_gap": min_gap,
            "keyword_share": keyword_share,
            "snr_db": {"keyword": list(KEYWORD_SNR_DB), "sound": list(SOUND_SNR_DB)},
            "soundscapes": [records[k] for k in sorted(records)],
        }
        write_json(tmp / "meta.json", meta)
    counts = {s: sum(len(r["events"]) for k, r in records.items() if k[0] == s) for s in splits}
    return {"out": str(out), "soundscapes": splits, "events": counts, "classes": [*keywords, *sounds]}


__all__ = ["SOUNDS", "generate", "render"]
