"""A result document as tables (markdown, the console) and a plot; writing the three files.

The same rows feed every table: one table per input kind, one line per (backend, batch size).
"""

from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_file, write_json
from .roofline import describe as describe_roofline

LEFT = ("backend", "prec", "notes", "CUDA graph")  # text columns; the rest are numbers
INPUT_TITLES = {
    "waveform": "End to end (waveform in, front end included)",
    "fbank": "Model only (fbank features in)",
}


def fmt(x: float | None, unit: str = "") -> str:
    """Three significant figures or so, thousands separated; ``-`` for missing values."""
    if x is None:
        return "-"
    if abs(x) >= 100:
        text = f"{x:,.0f}"
    elif abs(x) >= 10:
        text = f"{x:.1f}"
    elif abs(x) >= 1:
        text = f"{x:.2f}"
    else:
        text = f"{x:.3g}"
    return text + unit


def _any(rows: list[dict], test) -> bool:
    return any(test(r) for r in rows)


def table(doc: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the ``kind`` table; optional columns appear only when some row has them."""
    rows = [r for r in doc["results"] if r["input"] == kind]
    baselines = doc["settings"]["baselines"]
    gpu = _any(rows, lambda r: (r["memory"] or {}).get("gpu_peak_allocated_mib") is not None)
    graphs = _any(rows, lambda r: r["cuda_graph"] not in (None, "not applicable", "off"))
    memory = _any(rows, lambda r: r["memory"] is not None)
    quality = _any(rows, lambda r: r["quality"] is not None)
    roofline = doc.get("roofline") is not None
    headers = ["backend", "prec", "batch", "p50 ms", "p99 ms", "clips/s", "RTF", *(f"× {b}" for b in baselines)]
    headers += ["% of floor"] * roofline + ["top-1", "top-1 decisive", "min cos"] * quality
    headers += ["peak RSS MiB"] * memory + ["GPU peak MiB"] * gpu + ["CUDA graph"] * graphs + ["load + 1st s", "notes"]
    out = []
    for r in rows:
        lat = r["latency_ms"] or {}
        line = [r["backend"], r["precision"] or "-", str(r["batch"]), fmt(lat.get("p50")), fmt(lat.get("p99"))]
        line += [fmt(r["throughput_clips_per_s"]), fmt(r["real_time_factor"])]
        line += [fmt((r["speedup"] or {}).get(b), "×") for b in baselines]
        if roofline:
            fraction = r["roofline_fraction"]
            line.append(fmt(fraction * 100 if fraction is not None else None, "%"))
        if quality:
            q = r["quality"] or {}
            decisive = q.get("top1_decisive")
            line += [
                f"{q['top1_agreement']:.0%}" if q else "-",
                f"{decisive:.0%} of {q['decisive_clips']}" if decisive is not None else "-",
                f"{q['min_cosine']:.5f}" if q else "-",
            ]
        mem = r["memory"] or {}
        line += [fmt(mem.get("rss_peak_mib"))] * memory + [fmt(mem.get("gpu_peak_allocated_mib"))] * gpu
        line += [r["cuda_graph"] or "-"] * graphs
        first = r["load_s"] + r["first_call_s"] if r["load_s"] is not None and r["first_call_s"] is not None else None
        notes = r["reason"] or ""
        if r["status"] != "ok":
            notes = f"{r['status']}: {notes}"
        elif r["h2d"] == "excluded":
            notes = "inputs already on the GPU"
        line += [fmt(first), notes]
        out.append(line)
    if not any(line[-1] for line in out):  # no notes: no column
        headers, out = headers[:-1], [line[:-1] for line in out]
    return headers, out


def summary_lines(doc: dict) -> list[str]:
    """What ran where: model, machine, software, settings, command (markdown bullet text)."""
    src, s, env = doc["source"], doc["settings"], doc["environment"]
    m = src["model"]
    cpu = env["cpu"]
    flags = ", ".join(cpu.get("flags") or []) or "n/a"
    gpus = "; ".join(f"{g['name']} ({g['memory_gib']} GiB, driver {g['driver']})" for g in env["gpus"]) or "none"
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items() if v and k != "ast-deploy")
    run = f"{s['iters']} iterations" if s["iters"] else f"{s['seconds']:g} s (at least {s['min_iters']} iterations)"
    git = env["git"]
    commit = f"{git['commit'][:10]}{' (dirty)' if git['dirty'] else ''}" if git["commit"] else "n/a"
    threads = s["threads"] or f"default ({env['torch_threads']})"
    isolation = {"batch": "a fresh process per row", "backend": "a fresh process per backend", "none": "one process"}
    lines = [
        f"**Model**: AST, width {m['embed_dim']}, depth {m['depth']}, {m['target_length']} frames, {m['num_labels']} labels, "
        f"strides {m['fstride']}/{m['tstride']}: {src['gflops_per_clip']:,.1f} GFLOP per clip",
        f"**Source**: {src['type']} `{src['path']}`",
        f"**Machine**: {cpu['model']}, {cpu.get('usable_cores') or cpu['logical_cores']} usable cores ({flags}), "
        f"{env['memory_gib']} GiB RAM; GPU: {gpus}",
        f"**Software**: {libs}; Python {env['python']}; {env['os']}",
        f"**Run**: device {s['device']}, threads {threads}, "
        f"warm-up {max(1, s['warmup'])} call{'s' * (s['warmup'] > 1)}, {run} per row, {s['input_sets']} rotating input sets, {isolation[s['isolation']]}"
        + (
            f", host→device copies {s['h2d']}d, CUDA graphs {'on' if s['cuda_graphs'] else 'off'}"
            if "cuda" in s["device"]
            else ""
        )
        + f"; git {commit}; {env['timestamp']}",
        f"**Command**: `{env['command']}`",
    ]
    if doc.get("roofline"):
        lines.append(f"**Roofline**: {describe_roofline(doc['roofline'])}")
    return lines


def markdown(doc: dict, title: str | None = None) -> str:
    title = title or f"ast-deploy bench: {Path(doc['source']['path']).name}"
    parts = [f"# {title}", "", *(f"- {line}" for line in summary_lines(doc)), ""]
    for note in doc.get("notes", []):
        parts += [note, ""]
    for kind in doc["settings"]["inputs"]:
        headers, rows = table(doc, kind)
        if not rows:
            continue
        parts += [f"## {INPUT_TITLES[kind]}", ""]
        parts += [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join(":---" if h in LEFT else "---:" for h in headers) + "|",
        ]
        parts += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        parts.append("")
    parts.append(
        "Latency: wall clock around one call plus device synchronisation, warm-up excluded; clips/s = batch / mean "
        "latency; RTF = audio seconds processed per second; × = mean-latency speed-up over that backend at the same "
        "input and batch; load + 1st = loading plus the first call (compilation included)."
        + (" % of floor = roofline floor per clip / measured time per clip." if doc.get("roofline") else "")
    )
    if doc["unavailable"]:
        parts += [
            "",
            "Not available here: " + "; ".join(f"{u['backend']} ({u['reason']})" for u in doc["unavailable"]) + ".",
        ]
    return "\n".join(parts) + "\n"


def console_tables(doc: dict):
    """rich Tables, one per input kind."""
    from rich.table import Table

    tables = []
    for kind in doc["settings"]["inputs"]:
        headers, rows = table(doc, kind)
        if not rows:
            continue
        t = Table(title=INPUT_TITLES[kind])
        for h in headers:
            t.add_column(h, justify="left" if h in LEFT else "right")
        for row in rows:
            t.add_row(*row)
        tables.append(t)
    return tables


def plot(doc: dict, path: str | Path, title: str | None = None) -> None:
    """p50 latency and throughput against batch size, one line per backend and input kind (log axes).

    With a single batch size the two panels are bar charts instead.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    ok = [r for r in doc["results"] if r["status"] == "ok"]
    series: dict[tuple[str, str], list[dict]] = {}
    for r in ok:
        series.setdefault((r["backend"], r["input"]), []).append(r)
    two_kinds = len({k for _, k in series}) > 1
    label = {key: f"{key[0]} ({key[1]})" if two_kinds else key[0] for key in series}
    single = len({r["batch"] for r in ok}) <= 1
    fig, axes = plt.subplots(1, 2, figsize=(13, max(4.5, 0.3 * len(series) + 1.5)) if single else (15, 5.5))
    panels = (
        ("p50 latency (ms)", lambda r: r["latency_ms"]["p50"]),
        ("throughput (clips/s)", lambda r: r["throughput_clips_per_s"]),
    )
    for ax, (ylabel, value) in zip(axes, panels):
        if single:
            keys = list(series)
            values = [value(series[k][0]) for k in keys]
            colors = ["C0" if k[1] == "waveform" else "C1" for k in keys]
            bars = ax.barh([label[k] for k in keys], values, color=colors)
            for bar, key in zip(bars, keys):  # baselines hatched
                if key[0] in doc["settings"]["baselines"]:
                    bar.set_hatch("//")
                    bar.set_alpha(0.6)
            ax.bar_label(bars, [fmt(v) for v in values], padding=3, fontsize=8)
            ax.set_xlabel(ylabel + (f", batch {ok[0]['batch']}" if ok else ""))
            ax.margins(x=0.15)
            ax.invert_yaxis()
        else:
            backends = list(dict.fromkeys(name for name, _ in series))
            palette = plt.get_cmap("tab10" if len(backends) <= 10 else "tab20")
            for key, rows in series.items():
                rows = sorted(rows, key=lambda r: r["batch"])
                # colour (and past 20 backends, marker): backend; line style: input kind. The default
                # 10-colour cycle made side_by_side's 13 backends share colours.
                i = backends.index(key[0])
                ax.plot(
                    [r["batch"] for r in rows],
                    [value(r) for r in rows],
                    "-" if key[1] == "waveform" else "--",
                    color=palette(i % 20),
                    marker="os^Dv"[i // 20 % 5],
                    label=label[key],
                )
            batches = sorted({r["batch"] for r in ok})
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.minorticks_off()
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt(v)))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("batch size")
            ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    if not single and series:
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    env = doc["environment"]
    where = env["gpus"][0]["name"] if "cuda" in doc["settings"]["device"] and env["gpus"] else env["cpu"]["model"]
    fig.suptitle(title or f"{Path(doc['source']['path']).name} on {where} ({doc['settings']['device']})")
    fig.tight_layout()
    save_figure(fig, path)


def write(doc: dict, json_path=None, markdown_path=None, plot_path=None, title: str | None = None) -> list[Path]:
    """Write whichever outputs were asked for; returns their paths."""
    written = []
    if json_path:
        write_json(json_path, doc)
        written.append(Path(json_path))
    if markdown_path:
        with atomic_file(markdown_path) as f:
            f.write(markdown(doc, title))
        written.append(Path(markdown_path))
    if plot_path:
        plot(doc, plot_path, title)
        written.append(Path(plot_path))
    return written


def pyplot():
    """matplotlib's pyplot on the Agg backend: figures go to files, there is no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` atomically (format from the suffix, PNG by default) and release it."""
    path = Path(path)
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    pyplot().close(fig)


def write_outputs(stem: str | Path, doc: dict, markdown_text: str, plot) -> list[Path]:
    """``STEM.json`` (``doc``), ``STEM.md`` and ``STEM.png`` (``plot(doc, path)``) of a benchmark script."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ext) for ext in (".json", ".md", ".png")]
    write_json(paths[0], doc)
    with atomic_file(paths[1], "w") as f:
        f.write(markdown_text)
    plot(doc, paths[2])
    return paths
