"""Decoding in Ray tasks: one listed file -> its mono samples at the model's rate, or an error row.

The audio goes through :func:`ast_deploy.audio.load_audio` (soundfile, channels averaged, soxr HQ:
the samples predict's stream produces; docs/streaming.md, section 2), so that batch scores equal
predict's. Every problem with a file is caught here and becomes ``status="error"`` with one line
naming it; nothing a file contains can stop the job.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import soundfile as sf

from ..audio import load_audio
from ..errors import InputError
from ..windows import check_audio_length
from .inputs import MISSING, filesystem, is_uri

EMPTY = np.zeros(0, np.float32)


def wav_truncation(path: str) -> str | None:
    """Why a RIFF/WAVE file is truncated (its data chunk declares more bytes than the file holds), or ``None``.

    libsndfile reads a truncated WAV without complaint (it shortens the data chunk to what is
    there), so a half-copied file would be tagged as if it were whole. A declared size of 0 or
    0xFFFFFFFF is a stream whose length was unknown when the header was written (ffmpeg to a pipe),
    not a truncation.
    """
    try:
        total = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos = 12
            while pos + 8 <= total:
                f.seek(pos)
                chunk_id, size = struct.unpack("<4sI", f.read(8))
                if chunk_id == b"data":
                    if size in (0, 0xFFFFFFFF):
                        return None
                    held = total - pos - 8
                    return (
                        None
                        if held >= size
                        else f"truncated: its header declares {size} bytes of audio, it holds {held}"
                    )
                pos += 8 + size + (size & 1)
    except OSError:
        return None  # let the decoder name the problem
    return None


@contextlib.contextmanager
def local_file(path: str) -> Iterator[str]:
    """A local path for ``path``: itself, or a temporary copy of a URI's object (soundfile reads paths)."""
    if not is_uri(path):
        yield path
        return
    fs, inner, _ = filesystem(path)
    suffix = os.path.splitext(inner)[1]
    with tempfile.NamedTemporaryFile(prefix="ast-deploy-batch-", suffix=suffix) as tmp:
        try:
            with fs.open_input_stream(inner) as src:
                while block := src.read(1 << 22):
                    tmp.write(block)
        except (OSError, FileNotFoundError) as e:
            raise InputError(f"{path}: cannot read ({' '.join(str(e).split())})") from None
        tmp.flush()
        yield tmp.name


def decode(row: dict[str, Any], sample_rate: int, min_samples: int, frame_ms: float) -> dict[str, Any]:
    """A listing row -> the row the actors score: ``samples`` (float32 at ``sample_rate``) and the file's
    own ``sample_rate``, or ``status="error"`` with the problem."""
    path = str(row["path"])
    out = {
        "path": path,
        "size": int(row["size"]),
        "mtime": int(row["mtime"]),
        "sample_rate": 0,
        "samples": EMPTY,
        "status": "ok",
        "error": "",
    }
    try:
        if out["size"] == MISSING and not is_uri(path) and not os.path.exists(path):
            raise InputError(f"{path}: no such file" + (" (a dangling symbolic link)" if os.path.islink(path) else ""))
        with local_file(path) as local:
            problem = wav_truncation(local)
            if problem:
                raise InputError(f"{path}: {problem}")
            try:
                samples = load_audio(local, sample_rate)
                rate = sf.info(local).samplerate
            except InputError as e:  # name the file, not a temporary copy of it
                raise InputError(str(e).replace(local, path)) from None
        check_audio_length(len(samples), min_samples, frame_ms, sample_rate, path)  # as predict's stream
        out["samples"], out["sample_rate"] = samples, int(rate)
    except InputError as e:
        out["status"], out["error"] = "error", " ".join(str(e).split())
    except Exception as e:  # a decoder's own failure on a hostile file must not stop the job either
        out["status"], out["error"] = "error", f"{path}: {type(e).__name__}: {' '.join(str(e).split())}"
    return out


__all__ = ["decode", "local_file", "wav_truncation"]
