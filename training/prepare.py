"""Official dataset downloads -> the authors' JSON manifests + label CSVs, ready for ``ast-deploy train``.

* ESC-50 (``ESC-50-master/audio/*.wav`` + ``meta/esc50.csv``): audio resampled from 44.1 kHz to
  16 kHz (soxr, as ``ast_deploy.audio`` loads everything), one train/eval manifest pair per
  official fold: ``esc_train_data_K.json`` (the other four folds) and ``esc_eval_data_K.json``.
* Speech Commands V2 (a folder per word, ``validation_list.txt``, ``testing_list.txt``):
  ``speechcommand_{train,valid,eval}_data.json`` with the official split; 16 kHz already.
* AudioSet: the official segment CSVs (``YTID, start_seconds, end_seconds, positive_labels``)
  matched to the audio files the user has, by YouTube id in the file name (``YTID.wav``,
  ``YYTID.wav``, ``YTID_30.000.flac``, ``YTID_30000_40000.wav``, ...): ``audioset_NAME.json`` per CSV
  and ``missing_NAME.txt`` with the segments that have no audio; given both balanced and
  unbalanced training CSVs, also ``audioset_full_train.json`` (the paper's full set).

Manifest paths are absolute (as the authors' scripts write them), so the manifests also work with
the authors' own code. Labels are mids; each command writes its label CSV beside the manifests.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path

import soundfile as sf

from ast_deploy.audio import load_audio
from ast_deploy.errors import InputError
from ast_deploy.fileio import write_json
from ast_deploy.labels import LABEL_SETS, LabelSet, read_label_csv
from ast_deploy.manifests import AUDIO_EXTENSIONS

ESC50_MID = "/m/07rwj{:02d}"  # the authors' made-up mids for ESC-50's 50 classes


def write_manifest(path: Path, entries: Iterable[tuple[Path, list[str]]]) -> int:
    """The authors' format: ``{"data": [{"wav": PATH, "labels": "mid1,mid2"}, ...]}``."""
    data = [{"wav": str(wav), "labels": ",".join(mids)} for wav, mids in entries]
    write_json(path, {"data": data})
    return len(data)


def write_label_csv(path: Path, labels: LabelSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows([i, mid, name] for i, (mid, name) in enumerate(zip(labels.mids, labels.names, strict=True)))
    os.replace(tmp, path)


def copy_builtin_labels(name: str, out: Path) -> tuple[Path, LabelSet]:
    dst = out / LABEL_SETS[name]
    with resources.as_file(resources.files("ast_deploy") / "labels" / LABEL_SETS[name]) as src:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dst, read_label_csv(dst)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(f"{path}: not found; {what}")
    return path


# --- ESC-50 ---------------------------------------------------------------------------------


def _resample_one(job: tuple[str, str]) -> str | None:
    """Write ``src`` at 16 kHz (16-bit PCM) to ``dst``; returns an error text instead of raising in a worker."""
    src, dst = job
    try:
        samples = load_audio(src, 16000)
    except InputError as e:
        return str(e)
    tmp = f"{dst}.tmp.wav"
    sf.write(tmp, samples, 16000, subtype="PCM_16")
    os.replace(tmp, dst)
    return None


def resample_all(jobs: list[tuple[Path, Path]], workers: int) -> None:
    """Resample files in parallel, skipping outputs that already exist (so a rerun resumes)."""
    todo = [(str(s), str(d)) for s, d in jobs if not d.exists()]
    if not todo:
        return
    from rich.console import Console
    from rich.progress import Progress

    errors = []
    with Progress(console=Console(stderr=True)) as bar, ProcessPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("resampling to 16 kHz", total=len(todo))
        for error in pool.map(_resample_one, todo, chunksize=8):
            if error:
                errors.append(error)
            bar.advance(task)
    if errors:
        raise InputError(f"{len(errors)} audio files could not be read: {'; '.join(errors[:3])}")


def prepare_esc50(root: Path, out: Path, workers: int = 2) -> dict:
    """ESC-50's official tree -> 16 kHz audio, a label CSV and the 5 folds' train/eval manifests."""
    root, out = Path(root), Path(out)
    if (root / "ESC-50-master").is_dir():
        root = root / "ESC-50-master"
    meta = _require(root / "meta" / "esc50.csv", "expected the ESC-50 download (audio/ and meta/esc50.csv)")
    rows = _read_dict_csv(meta, ("filename", "fold", "target", "category"))
    classes: dict[int, str] = {}
    for n, row in rows:
        target = _int(row["target"], meta, n, "target")
        if classes.setdefault(target, row["category"]) != row["category"]:
            raise InputError(f"{meta}:{n}: target {target} is {row['category']!r} here but {classes[target]!r} before")
    if sorted(classes) != list(range(len(classes))):
        raise InputError(f"{meta}: targets are not 0..{len(classes) - 1}")
    labels = LabelSet([ESC50_MID.format(i) for i in sorted(classes)], [classes[i] for i in sorted(classes)])
    audio_out = (out / "audio_16k").resolve()
    audio_out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (_require(root / "audio" / row["filename"], "listed in meta/esc50.csv"), audio_out / row["filename"])
        for _, row in rows
    ]
    resample_all(jobs, workers)
    write_label_csv(out / "esc_class_labels_indices.csv", labels)
    folds = sorted({_int(row["fold"], meta, n, "fold") for n, row in rows})
    counts = {}
    for fold in folds:
        entries = [
            (audio_out / row["filename"], [labels.mids[int(row["target"])]], int(row["fold"])) for _, row in rows
        ]
        train = write_manifest(out / f"esc_train_data_{fold}.json", ((w, m) for w, m, f in entries if f != fold))
        evaluate = write_manifest(out / f"esc_eval_data_{fold}.json", ((w, m) for w, m, f in entries if f == fold))
        counts[str(fold)] = {"train": train, "eval": evaluate}
    return {
        "out": str(out),
        "label_csv": str(out / "esc_class_labels_indices.csv"),
        "clips": len(rows),
        "folds": counts,
    }


def _read_dict_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            return [(n, row) for n, row in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def _int(text: str, path: Path, line: int, column: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{path}:{line}: {column} {text!r} is not an integer") from None


# --- Speech Commands V2 ---------------------------------------------------------------------


def prepare_speechcommands(root: Path, out: Path) -> dict:
    """Speech Commands V2 -> the official train/valid/test manifests (authors' file names)."""
    root, out = Path(root).resolve(), Path(out)
    lists = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        path = _require(root / name, "expected the Speech Commands V2 folder layout")
        lists[name] = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    label_csv, labels = copy_builtin_labels("speechcommands", out)
    mid_of = dict(zip(labels.names, labels.mids, strict=True))
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    unknown = [w for w in words if w not in mid_of]
    if unknown:
        raise InputError(f"{root}: folder(s) {', '.join(unknown)} are not Speech Commands V2 words")
    splits: dict[str, list[tuple[Path, list[str]]]] = {"train": [], "valid": [], "eval": []}
    for word in words:
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            split = (
                "valid"
                if rel in lists["validation_list.txt"]
                else "eval"
                if rel in lists["testing_list.txt"]
                else "train"
            )
            splits[split].append((wav, [mid_of[word]]))
    listed = lists["validation_list.txt"] | lists["testing_list.txt"]
    absent = sorted(rel for rel in listed if not (root / rel).is_file())
    if absent:
        raise InputError(
            f"{root}: {len(absent)} files of validation_list.txt/testing_list.txt are missing, e.g. {', '.join(absent[:3])}"
        )
    counts = {}
    for split, entries in splits.items():
        if not entries:
            raise InputError(f"{root}: the {split} split is empty")
        counts[split] = write_manifest(out / f"speechcommand_{split}_data.json", entries)
    return {"out": str(out), "label_csv": str(label_csv), "words": len(words), "clips": counts}


# --- AudioSet -------------------------------------------------------------------------------

YTID = re.compile(r"^[A-Za-z0-9_-]{11}$")


def index_audio_files(audio_dir: Path) -> dict[str, list[Path]]:
    """YouTube id -> audio files whose names start with it (optionally after the 'Y' some downloaders add)."""
    index: dict[str, list[Path]] = {}
    for path in sorted(audio_dir.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        stem = path.stem
        keys = {stem[:11]}
        if stem.startswith("Y") and len(stem) >= 12:
            keys.add(stem[1:12])
        for key in keys:
            if YTID.match(key):
                index.setdefault(key, []).append(path)
    return index


def _pick(candidates: list[Path], start: float) -> Path:
    """The file of the right segment when a video has several: its name carries the start time."""
    if len(candidates) == 1:
        return candidates[0]
    marks = (f"{start:.3f}", f"{start:g}", str(int(start * 1000)), str(int(start)))
    for path in candidates:
        if any(re.search(rf"(^|[_-]){re.escape(m)}($|[_.-])", path.stem[11:]) for m in marks):
            return path
    return candidates[0]


def read_segments(path: Path, labels: LabelSet) -> list[tuple[int, str, float, list[str]]]:
    """Rows ``YTID, start, end, "mid1,mid2"`` of an official segment CSV (``#`` lines are comments)."""
    known = set(labels.mids)
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    for n, row in enumerate(csv.reader(lines, skipinitialspace=True), start=1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 4:
            raise InputError(f"{path}:{n}: expected 'YTID, start_seconds, end_seconds, \"labels\"'")
        try:
            start = float(row[1])
        except ValueError:
            raise InputError(f"{path}:{n}: start_seconds {row[1]!r} is not a number") from None
        mids = [m.strip() for m in row[3].split(",") if m.strip()]
        bad = [m for m in mids if m not in known]
        if bad:
            raise InputError(f"{path}:{n}: label {bad[0]!r} is not in the AudioSet label CSV")
        rows.append((n, row[0].strip(), start, mids))
    if not rows:
        raise InputError(f"{path}: no segments")
    return rows


def prepare_audioset(audio_dir: Path, segment_csvs: list[Path], out: Path) -> dict:
    """Official segment CSVs + the user's audio -> ``audioset_NAME.json`` and ``missing_NAME.txt`` per CSV."""
    audio_dir, out = Path(audio_dir).resolve(), Path(out)
    if not audio_dir.is_dir():
        raise InputError(f"{audio_dir}: not a directory")
    if not segment_csvs:
        raise InputError("give at least one segment CSV with --segments")
    label_csv, labels = copy_builtin_labels("audioset", out)
    index = index_audio_files(audio_dir)
    result = {
        "out": str(out),
        "label_csv": str(label_csv),
        "audio_files": sum(len(v) for v in index.values()),
        "splits": {},
    }
    found_by_split: dict[str, list[tuple[Path, list[str]]]] = {}
    for csv_path in segment_csvs:
        segments = read_segments(_require(Path(csv_path), "a segment CSV"), labels)
        name = Path(csv_path).stem.removesuffix("_segments")
        found, missing = [], []
        for _, ytid, start, mids in segments:
            if ytid in index:
                found.append((_pick(index[ytid], start), mids))
            else:
                missing.append(ytid)
        if not found:
            raise InputError(f"{csv_path}: none of its {len(segments)} segments has an audio file under {audio_dir}")
        write_manifest(out / f"audioset_{name}.json", found)
        (out / f"missing_{name}.txt").write_text("".join(f"{y}\n" for y in missing), encoding="utf-8")
        result["splits"][name] = {"segments": len(segments), "found": len(found), "missing": len(missing)}
        found_by_split[name] = found
    if "balanced_train" in found_by_split and "unbalanced_train" in found_by_split:
        # The paper's "full" training set is both CSVs together.
        full = found_by_split["balanced_train"] + found_by_split["unbalanced_train"]
        result["splits"]["full_train"] = {"found": write_manifest(out / "audioset_full_train.json", full)}
    return result


__all__ = ["prepare_audioset", "prepare_esc50", "prepare_speechcommands"]
