"""Long recordings: peak RSS and wall time of ``ast-deploy predict --hop H --json`` vs duration.

Each duration is a generated 16 kHz FLAC (silence and tone bursts, written block by block) run
through the installed ``ast-deploy predict`` in its own process, whose own peak RSS is measured
(``ast_deploy.bench.memory.run_measured``: not floored by this script's). Memory should not depend
on the duration (issue 13): the file is decoded, resampled, cut and scored one block and one batch
at a time.

    python benchmarks/long_audio.py MODEL [--backend NAME] [--minutes 1,10,60] [--hop 0.25]
        [--out benchmarks/results/<machine>/long_audio]

Writes results.json, results.md and results.png under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ast_deploy.bench import environment, memory, report  # noqa: E402

RATE = 16000


def write_flac(path: Path, seconds: float) -> None:
    t = np.arange(RATE * 10) / RATE
    block = np.where(t < 2.0, 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    total = int(seconds * RATE)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16", format="FLAC") as f:
        for start in range(0, total, block.size):
            f.write(block[: total - start])


def cli() -> str:
    beside = Path(sys.executable).with_name("ast-deploy")
    return str(beside) if beside.exists() else (shutil.which("ast-deploy") or "ast-deploy")


def run(args: list[str], output: Path) -> tuple[float, float, int]:
    """(peak RSS MiB, wall seconds, windows scored) of one ``ast-deploy predict ... --json`` process.

    Its JSON goes to ``output`` (read after the process ended, so it adds nothing to the peak)."""
    with open(output, "w") as out:
        measured = memory.run_measured([cli(), *args], stdout=out)
    if measured.returncode != 0:
        raise SystemExit(f"ast-deploy {' '.join(args)} failed:\n{measured.stderr}")
    (result,) = json.loads(output.read_text())["results"]
    return measured.peak_rss_mib, measured.wall_s, len(result["windows"])


def markdown(doc: dict) -> str:
    lines = [
        f"# Long recordings: {doc['model']} ({doc['backend'] or 'default backend'}, {doc['machine']})",
        "",
        f"`ast-deploy predict MODEL FILE --hop {doc['hop']:g} --json` on generated 16 kHz FLAC files, one process each.",
        "",
        "| duration (min) | windows | peak RSS (MiB) | wall (s) | audio s per wall s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["rows"]:
        lines.append(
            f"| {r['minutes']:g} | {r['windows']} | {r['peak_rss_mib']:.0f} | {r['wall_s']:.1f} "
            f"| {r['minutes'] * 60 / r['wall_s']:.1f} |"
        )
    lines += ["", f"Command: `{doc['command']}`", ""]
    return "\n".join(lines)


def plot(doc: dict, path: Path) -> None:
    plt = report.pyplot()

    minutes = [r["minutes"] for r in doc["rows"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(minutes, [r["peak_rss_mib"] for r in doc["rows"]], "o-")
    a.set_xlabel("duration (min)")
    a.set_ylabel("peak RSS (MiB)")
    a.set_ylim(bottom=0)
    b.plot(minutes, [r["wall_s"] for r in doc["rows"]], "o-")
    b.set_xlabel("duration (min)")
    b.set_ylabel("wall time (s)")
    fig.suptitle(f"predict --hop {doc['hop']:g}: {doc['model']} ({doc['machine']})")
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="artifact directory or checkpoint")
    p.add_argument("--backend", help="default: the directory's best CPU backend")
    p.add_argument("--minutes", default="1,10,60", help="comma-separated durations")
    p.add_argument("--hop", type=float, default=0.25)
    p.add_argument("--out", type=Path, help="default benchmarks/results/<machine>/long_audio")
    args = p.parse_args(argv)
    command = ["benchmarks/long_audio.py", *(sys.argv[1:] if argv is None else argv)]
    env = environment.collect(command)
    machine = environment.machine_name(env, "cpu")
    out = args.out or REPO / "benchmarks" / "results" / machine / "long_audio"
    rows = []
    with tempfile.TemporaryDirectory(prefix="ast-long-") as work:
        for minutes in (float(m) for m in args.minutes.split(",")):
            path = Path(work) / f"{minutes:g}min.flac"
            write_flac(path, minutes * 60)
            flags = ["--hop", str(args.hop), "--json", "-k", "1", "--no-progress"]
            flags += ["--backend", args.backend] if args.backend else []
            rss, wall, windows = run(["predict", str(args.model), str(path), *flags], path.with_suffix(".json"))
            rows.append({"minutes": minutes, "windows": windows, "peak_rss_mib": rss, "wall_s": wall})
            print(rows[-1], file=sys.stderr)
            path.unlink()
    doc = {
        "model": str(args.model),
        "backend": args.backend,
        "machine": machine,
        "hop": args.hop,
        "command": "python " + " ".join(command),
        "environment": env,
        "rows": rows,
    }
    report.write_outputs(out / "results", doc, markdown(doc), plot)
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
