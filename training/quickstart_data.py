"""A keyword-spotting dataset made on the spot: ten words spoken by espeak-ng, no downloads.

Realism comes from variety: 9 English accents x 50-odd voice variants, speaking rate 120-210
words/min, pitch 15-85, a random "microphone" (band-pass tilt), a random position in the 1 s
clip, random gain and background noise (white, pink, brown, mains hum or a babble of other
keywords) at 5-30 dB SNR.

The split is by speaker: a voice variant heard in training is never in the validation or test
set, so the test accuracy says how well the model generalises to new voices, not how well it
remembers them. Everything is seeded; the same seed gives the same files on every machine with
the same espeak-ng.

Layout::

    OUT/audio/{train,valid,test}/WORD/NNNNN.wav   16 kHz mono 16-bit, 1 s
    OUT/{train,valid,test}.csv                    path,label (paths relative to OUT)
    OUT/labels.csv                                index,mid,display_name
    OUT/meta.json                                 voices per split, parameters, counts
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from rich.console import Console
from rich.progress import Progress
from scipy.signal import butter, sosfilt

from ast_deploy.errors import InputError, UnavailableError
from ast_deploy.fileio import atomic_dir, write_json

SAMPLE_RATE = 16000
CLIP_SECONDS = 1.0
GENERATOR_VERSION = 2
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
ACCENTS = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc", "en-gb",
)  # fmt: skip
# espeak-ng voice variants ("speakers"). Each split gets its own, never shared: test voices are new.
VOICES = {
    "train": (
        "m1", "m2", "m3", "m5", "m6", "m8", "f1", "f4", "f5", "adam", "Alex", "Alicia", "Andy", "Annie",
        "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "Denis", "ed", "edward", "Gene",
        "gustave", "Henrique", "Hugo", "iven", "john", "Lee", "linda", "marcelo", "Mario", "max", "Michael",
        "miguel", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "Storm", "travis",
        "zac", "grandma", "klatt", "croak", "whisper",
    ),
    "valid": ("m7", "f2", "anika", "Marco", "norbert", "steph2"),
    "test": ("m4", "f3", "Andrea", "david", "steph", "victor", "Mike", "grandpa", "klatt3", "whisperf"),
}  # fmt: skip
BABBLE = (
    "the weather was lovely this afternoon by the lake",
    "could you pass me that book from the shelf please",
    "we walked to the station and caught the early train",
    "my sister makes excellent bread with fresh butter",
    "they painted the kitchen a pale shade of green",
    "the children laughed at the funny little puppy",
)


@dataclass(frozen=True)
class Utterance:
    """Everything that determines one clip; drawn from the clip's own seeded generator."""

    split: str
    index: int
    word: str
    voice: str  # espeak-ng "-v" argument: accent+variant
    speed: int
    pitch: int
    seed: int


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise UnavailableError("espeak-ng is not installed (apt-get install espeak-ng, or `make system-deps`)")
    return found


def synthesise(text: str, voice: str, speed: int, pitch: int, binary: str = "espeak-ng") -> np.ndarray:
    """espeak-ng speech as float32 at 16 kHz (espeak speaks at 22.05 kHz; soxr resamples)."""
    result = subprocess.run(
        [binary, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or len(result.stdout) < 100:
        raise InputError(f"espeak-ng -v {voice} failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)


def trim_silence(x: np.ndarray, threshold: float = 0.02, fade_ms: float = 10.0) -> np.ndarray:
    """Cut leading and trailing silence, with short fades so that the cut makes no click."""
    loud = np.flatnonzero(np.abs(x) > threshold * np.abs(x).max())
    if loud.size:
        x = x[loud[0] : loud[-1] + 1]
    n = min(len(x) // 2, int(fade_ms * SAMPLE_RATE / 1000))
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    x = x.copy()
    x[:n] *= ramp
    x[len(x) - n :] *= ramp[::-1]
    return x


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    f = np.arange(n // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz with decaying harmonics and a little jitter."""
    t = np.arange(n) / SAMPLE_RATE
    base = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 8))
    x = x + 0.1 * colored_noise(n, rng, 1.0)
    return x / np.sqrt(np.mean(x**2))


def microphone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random band-pass: cheap phones cut the lows, cheap microphones the highs."""
    low = rng.uniform(60, 400)
    high = rng.uniform(3000, 7800)
    sos = butter(2, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def place(speech: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Put the utterance at a random offset in a clip of ``n`` samples (cut if it is longer)."""
    speech = speech[:n]
    clip = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - len(speech) + 1))
    clip[start : start + len(speech)] = speech
    return clip


def make_clip(u: Utterance, binary: str, babble: list[np.ndarray]) -> np.ndarray:
    """Speech -> microphone -> position -> noise at a random SNR -> gain; float32 in [-1, 1]."""
    rng = np.random.default_rng(u.seed)
    n = int(CLIP_SECONDS * SAMPLE_RATE)
    speech = trim_silence(synthesise(u.word, u.voice, u.speed, u.pitch, binary))
    if rng.random() < 0.7:
        speech = microphone(speech, rng)
    clip = place(speech / (np.abs(speech).max() + 1e-9), rng, n)
    kind = rng.choice(["white", "pink", "brown", "hum", "babble"])
    if kind == "babble" and babble:
        noise = 0.05 * colored_noise(n, rng, 1.0)
        for i in rng.choice(len(babble), size=4):  # four talkers at once: a murmur of other words
            start = int(rng.integers(0, max(1, len(babble[i]) - n)))
            noise = noise + place(babble[i][start : start + n], rng, n)
        noise = noise / (np.sqrt(np.mean(noise**2)) + 1e-12)
    elif kind == "hum":
        noise = hum(n, rng)
    else:
        noise = colored_noise(n, rng, {"white": 0.0, "pink": 1.0, "brown": 2.0, "babble": 1.0}[kind])
    speech_power = np.mean(clip[clip != 0] ** 2) if np.any(clip) else 1.0
    snr_db = rng.uniform(5.0, 30.0)
    clip = clip + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    gain = 10 ** (rng.uniform(-20, -1) / 20)
    return (clip / (np.abs(clip).max() + 1e-9) * gain).astype(np.float32)


def plan(clips_per_word: dict[str, int], seed: int) -> list[Utterance]:
    """Every clip's parameters, drawn up front from one seeded generator (cheap and deterministic)."""
    rng = np.random.default_rng(seed)
    out = []
    for split, per_word in clips_per_word.items():
        voices = VOICES[split]
        for i in range(per_word * len(KEYWORDS)):
            # Each voice says each word equally often (voice and word indices never move in lockstep).
            voice = f"{rng.choice(ACCENTS)}+{voices[(i // len(KEYWORDS)) % len(voices)]}"
            out.append(
                Utterance(
                    split=split,
                    index=i,
                    word=KEYWORDS[i % len(KEYWORDS)],
                    voice=voice,
                    speed=int(rng.integers(120, 211)),
                    pitch=int(rng.integers(15, 86)),
                    seed=int(rng.integers(2**31)),
                )
            )
    return out


def generate(
    out: str | Path, clips_per_word: int = 240, seed: int = 0, workers: int = 4, progress: bool = True
) -> dict:
    """Write the dataset to ``out`` (atomically: a half-made set never looks finished).

    ``clips_per_word`` sets the training set; validation and test get 1/6 and 1/4 of it.
    """
    out = Path(out)
    binary = espeak_binary()
    counts = {"train": clips_per_word, "valid": max(2, clips_per_word // 6), "test": max(2, clips_per_word // 4)}
    utterances = plan(counts, seed)
    # Babble noise: sentences without keywords, by training voices only (never a valid/test voice).
    babble_rng = np.random.default_rng(seed + 1)
    babble = [
        trim_silence(synthesise(text, f"en+{babble_rng.choice(VOICES['train'])}", 170, 50, binary)) for text in BABBLE
    ]
    with atomic_dir(out, overwrite=True) as tmp:
        rows: dict[str, list[tuple[str, str]]] = {split: [] for split in counts}

        def job(u: Utterance) -> None:
            rel = Path("audio") / u.split / u.word / f"{u.index:05d}.wav"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(tmp / rel, make_clip(u, binary, babble), SAMPLE_RATE, subtype="PCM_16")

        bar = Progress(console=Console(stderr=True), disable=not progress, transient=True)
        with bar, ThreadPoolExecutor(workers) as pool:
            task = bar.add_task("synthesising keywords", total=len(utterances))
            for _ in pool.map(job, utterances):  # espeak-ng runs as a subprocess: threads suffice
                bar.advance(task)
        for u in utterances:
            rows[u.split].append((f"audio/{u.split}/{u.word}/{u.index:05d}.wav", u.word))
        for split, split_rows in rows.items():
            with open(tmp / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([("path", "label"), *split_rows])
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("index", "mid", "display_name"), *((i, w, w) for i, w in enumerate(KEYWORDS))])
        meta = meta_for(clips_per_word, seed) | {
            "clips": {split: len(r) for split, r in rows.items()},
            "utterances": [asdict(u) for u in utterances],
        }
        write_json(tmp / "meta.json", meta)
    return {
        "out": str(out),
        "clips": meta["clips"],
        "keywords": list(KEYWORDS),
        "voices": {k: len(v) for k, v in VOICES.items()},
    }


def meta_for(clips_per_word: int, seed: int) -> dict:
    """What identifies a generated set: reuse a directory only when this matches."""
    return {
        "generator_version": GENERATOR_VERSION,
        "clips_per_word": clips_per_word,
        "seed": seed,
        "keywords": list(KEYWORDS),
        "voices": {k: list(v) for k, v in VOICES.items()},
        "espeak_ng": espeak_version(),
    }


def espeak_version() -> str:
    try:
        return subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def is_generated(out: str | Path, clips_per_word: int, seed: int) -> bool:
    """Whether ``out`` already holds the set these parameters would generate."""
    import json

    path = Path(out) / "meta.json"
    if not path.is_file():
        return False
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = meta_for(clips_per_word, seed)
    return all(meta.get(k) == v for k, v in expected.items())


__all__ = ["KEYWORDS", "VOICES", "generate", "is_generated"]
