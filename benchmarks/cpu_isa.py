"""Int8 on every x86 CPU class: quantisation schemes against float32, under each ISA this CPU can reach.

    python benchmarks/cpu_isa.py                       # the model trained on an AVX2 EPYC (tests/fixtures/cpu_isa)
    python benchmarks/cpu_isa.py --qemu Haswell        # and ONNX Runtime under QEMU's AVX2-only CPU model (slow)
    python benchmarks/cpu_isa.py --speed-checkpoint runs/base   # and the schemes' speed on a bigger model

Int8 kernels differ by CPU class, and not only in speed: without VNNI, u8 x s8 products are summed in
saturating int16 (``ast_deploy/cpu.py``). Another class's kernels run here under a cap: oneDNN (in OpenVINO
and PyTorch) reads ``ONEDNN_MAX_CPU_ISA``, one process per class. ONNX Runtime reads no cap; QEMU's user-mode
emulator with a CPU model (``qemu-x86_64 -cpu Haswell``: AVX2 and FMA, no AVX-512, no VNNI) makes its cpuid
report another CPU, so its AVX2 kernels really run (about 100x slower: few inputs).

Parts (``results.json``, ``.md`` and ``.png`` under ``--out``, default ``benchmarks/results/<machine>/cpu_isa``):

1. **ablation**: OpenVINO int8 schemes (scheme 1 of ast-deploy 0.1.0, each change alone, scheme 2) x CPU
   classes x inputs (the parity signals, the hard signals, 64 other seeded signals, held-out audio): the
   worst logit cosine and the top-1 agreement on decisive clips against PyTorch float32 (the int8 gate:
   0.99 and 99 %).
2. **layers**: scheme 1 and 2 under AVX2 and natively, each MatMul's output against the same IR with its
   FakeQuantize emulated in f32 (``LP_TRANSFORMS_MODE`` off): where the error starts.
3. **onnx**: ONNX Runtime with s8, s7 (``reduce_range``) and u8 weights, natively and (``--qemu``) emulated.
4. **speed** (``--speed-checkpoint``): batch-1 latency of each scheme here (fbank input, 2 threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The worker (possibly under QEMU, ~100x slower) imports only NumPy and the runtime it runs; the rest of
# ast_deploy is imported where the parent needs it.

FIXTURE = REPO / "tests" / "fixtures" / "cpu_isa"
CLASSES = ("avx2", "avx512", "avx512-vnni", "avx512-bf16", "amx")
SCHEME_1_LABEL, SCHEME_2_LABEL = "scheme 1 (0.1.0)", "scheme 2 (+ float output projections)"


def schemes() -> dict:
    """Scheme 1, each change alone, both, and scheme 2 (``ast_deploy.export.openvino_int8.Scheme``)."""
    from ast_deploy.export.openvino_int8 import SCHEME, SCHEME_1

    return {
        SCHEME_1_LABEL: SCHEME_1,
        "+ 7-bit weights": dataclasses.replace(SCHEME_1, seven_bit_weights=True),
        "+ float attention": dataclasses.replace(SCHEME_1, float_attention=True),
        "+ both": dataclasses.replace(SCHEME_1, seven_bit_weights=True, float_attention=True),
        SCHEME_2_LABEL: SCHEME,
    }


# --- the worker: one process per CPU class (or under QEMU) --------------------------------------


def worker(job_path: str) -> None:
    """Logits (or MatMul outputs) of each model file on each input set, written to ``job["out"]``."""
    job = json.loads(Path(job_path).read_text())
    data = np.load(job["inputs"])
    sets = sorted({k.rsplit("/", 1)[0] for k in data.files})
    out = {}
    for key, path in job["models"].items():
        for name in sets:
            feeds = {"waveform": data[f"{name}/windows"], "num_samples": data[f"{name}/lengths"]}
            if job["runtime"] == "onnx":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = job.get("threads", 2)
                session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                out[f"{key}|{name}"] = session.run(["logits"], feeds)[0]
            else:
                for tensor, value in openvino_outputs(path, feeds, job.get("config", {}), job.get("layers")).items():
                    out[f"{key}|{name}|{tensor}"] = value
    np.savez(job["out"], **out)


def openvino_outputs(path: str, feeds: dict, config: dict, layers: bool | None) -> dict[str, np.ndarray]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    matmuls = [op for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"] if layers else []
    for op in matmuls:
        model.add_outputs([op.output(0)])
    batch = len(feeds["waveform"])
    model.reshape({i: [batch, *i.get_partial_shape()[1:]] for i in model.inputs})
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", **config})
    request = compiled.create_infer_request()
    request.infer(feeds)
    out = {}
    roles = matmul_roles(model, matmuls)
    first = len(model.outputs) - len(matmuls)  # the graph's own outputs (logits, embedding) come first
    for i, op in enumerate(matmuls, first):
        out[roles[op.get_friendly_name()]] = request.get_output_tensor(i).data.copy()
    out["logits"] = request.get_tensor("logits").data.copy()
    return out


def matmul_roles(model, matmuls: list) -> dict[str, str]:
    """MatMul name -> ``front end 1``, ``block 1 qkv``, ``block 1 proj``, ``block 1 fc1``, ``block 1 fc2``, ..., ``head``:
    the transformer's GEMMs come in that order after the front end's (DFT, mel)."""
    from ast_deploy.export.openvino import front_end_nodes

    front = {n.get_friendly_name() for n in front_end_nodes(model)}
    roles, block = {}, 0
    rest = [op.get_friendly_name() for op in matmuls if op.get_friendly_name() not in front]
    for i, name in enumerate(op.get_friendly_name() for op in matmuls if op.get_friendly_name() in front):
        roles[name] = f"front end {i + 1}"
    for i, name in enumerate(rest[:-1]):
        block = i // 4 + 1
        roles[name] = f"block {block} {('qkv', 'proj', 'fc1', 'fc2')[i % 4]}"
    if rest:
        roles[rest[-1]] = "head"
    return roles


def run_worker(job: dict, work: Path, env: dict | None = None, wrapper: list[str] | None = None) -> dict:
    path = work / f"job-{time.monotonic_ns()}.json"
    job = {**job, "out": str(path.with_suffix(".npz"))}
    path.write_text(json.dumps(job))
    command = [*(wrapper or []), sys.executable, __file__, "--worker", str(path)]
    proc = subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["(no output)"])[-1]}
    with np.load(job["out"]) as data:
        return {k: data[k] for k in data.files}


# --- the parts ------------------------------------------------------------------------------------


def input_sets(artifacts, manifest: Path | None, clips: int) -> dict:
    from ast_deploy.parity import ParityInputs, hard_signals, manifest_inputs, synthetic_signals

    window, rate = artifacts.spec.num_samples, artifacts.spec.sample_rate
    sets = {
        "parity signals": ParityInputs(*synthetic_signals(16, window, rate, 0), "16 seeded signals (seed 0)"),
        "hard signals": ParityInputs(*hard_signals(window, rate), "8 hard signals"),
        "64 other signals": ParityInputs(*synthetic_signals(64, window, rate, 7), "64 seeded signals (seed 7)"),
    }
    if manifest:
        sets["held-out audio"] = manifest_inputs(manifest, artifacts.labels, window, rate, clips)
    return sets


def save_inputs(sets: dict, path: Path) -> Path:
    arrays = {}
    for name, s in sets.items():
        arrays[f"{name}/windows"], arrays[f"{name}/lengths"] = s.windows, s.lengths
    np.savez(path, **arrays)
    return path


def judge(logits: np.ndarray, ref, activation: str, labels) -> dict:
    import torch

    from ast_deploy.parity import DEFAULT_THRESHOLDS, compare

    result = compare("x", "int8", torch.from_numpy(logits), ref, activation, DEFAULT_THRESHOLDS["int8"], labels)
    return {
        "min_cosine": result.min_cosine,
        "top1_decisive": result.top1_decisive,
        "decisive": result.decisive_clips,
        "passed": result.passed,
        **({"accuracy": result.task_metric["value"]} if result.task_metric else {}),
    }


def quantized_irs(fp32_ir: Path, graph, labels: list[str], work: Path, stem: str) -> dict[str, Path]:
    """The float32 IR quantised under each scheme of ``labels``."""
    import openvino as ov

    from ast_deploy.export import openvino as ov_export
    from ast_deploy.export.openvino_int8 import calibration_feeds, quantize

    feeds, _ = calibration_feeds(graph)
    irs = {}
    for label in labels:
        model = ov.Core().read_model(str(fp32_ir))
        ov_export.set_batch(model, graph, high=-1)
        irs[label] = work / f"{stem}-{len(irs)}.xml"
        ov_export.save(quantize(model, feeds, schemes()[label]), irs[label])
    return irs


def ablation(artifacts, graph, sets, references, classes, work: Path) -> tuple[list[dict], dict[str, Path]]:
    from ast_deploy.cpu import cap_environment, cpu_info

    irs = quantized_irs(artifacts.path / "model.xml", graph, list(schemes()), work, "ablation")
    rows = []
    inputs = save_inputs(sets, work / "inputs.npz")
    for isa in classes:
        env = {} if isa == "native" else cap_environment(isa)
        print(f"ablation: {isa} ...", flush=True)
        out = run_worker(
            {"runtime": "openvino", "models": {k: str(v) for k, v in irs.items()}, "inputs": str(inputs)}, work, env
        )
        for label in irs:
            row = {"scheme": label, "cpu": f"{cpu_info().isa_class} (native)" if isa == "native" else isa}
            for name, s in sets.items():
                key = f"{label}|{name}|logits"
                row[name] = judge(out[key], references[name], artifacts.activation, s.labels) if key in out else out
            rows.append(row)
    return rows, irs


def layers(irs: dict[str, Path], sets, work: Path) -> list[dict]:
    """Each MatMul of scheme 1 and 2 on the parity signals: int8 kernels (native, AVX2) vs emulation."""
    from ast_deploy.cpu import cap_environment, cpu_info, reachable_classes

    inputs = save_inputs({"parity signals": sets["parity signals"]}, work / "layer-inputs.npz")
    picked = {k: str(irs[k]) for k in (SCHEME_1_LABEL, SCHEME_2_LABEL)}
    base = {"runtime": "openvino", "models": picked, "inputs": str(inputs), "layers": True}
    emulated = run_worker({**base, "config": {"LP_TRANSFORMS_MODE": False}}, work)
    runs = {f"{cpu_info().isa_class} (native)": run_worker(base, work)}
    if "avx2" in reachable_classes():
        runs["avx2"] = run_worker(base, work, cap_environment("avx2"))
    rows = []
    for key, reference in emulated.items():
        scheme, _, tensor = key.split("|")
        row = {"scheme": scheme, "tensor": tensor}
        for isa, out in runs.items():
            x, e = out[key].reshape(len(reference), -1), reference.reshape(len(reference), -1)
            row[isa] = float(np.abs(x - e).max() / max(np.abs(e).max(), 1e-12))  # max relative error
        rows.append(row)
    return rows


def onnx_part(artifacts, sets, references, qemu: str | None, work: Path) -> list[dict]:
    from ast_deploy.export import onnx_int8 as onnx_int8_export

    models = {}
    for weights in onnx_int8_export.WEIGHTS:
        models[weights] = work / f"model.{weights}.onnx"
        onnx_int8_export.quantize(artifacts.path / "model.onnx", models[weights], weights)
    small = {k: sets[k] for k in ("parity signals", "hard signals")}
    inputs = save_inputs(small, work / "onnx-inputs.npz")
    job = {"runtime": "onnx", "models": {k: str(v) for k, v in models.items()}, "inputs": str(inputs), "threads": 1}
    wrappers = {"native": None, **({f"qemu -cpu {qemu}": ["qemu-x86_64", "-cpu", qemu]} if qemu else {})}
    rows = []
    for where, wrapper in wrappers.items():
        print(f"onnx: {where} ...", flush=True)
        out = run_worker(job, work, wrapper=wrapper)
        for weights in models:
            row = {"weights": weights, "where": where}
            for name in small:
                key = f"{weights}|{name}"
                row[name] = judge(out[key], references[name], artifacts.activation, None) if key in out else out
            rows.append(row)
    return rows


def speed(checkpoint: Path, work: Path, iterations: int) -> list[dict]:
    """Batch-1 latency here of each OpenVINO scheme and change alone (f32 and bf16 hints) and ONNX Runtime weight encoding."""
    import onnxruntime as ort
    import openvino as ov
    import torch

    from ast_deploy.artifacts import ArtifactDir
    from ast_deploy.cpu import cpu_info
    from ast_deploy.export import export
    from ast_deploy.export import onnx_int8 as onnx_int8_export
    from ast_deploy.export.graph import BatchRange, build_graph

    out = work / "speed"
    export(checkpoint, out, to="onnx,openvino", input_kind="fbank", batch="1:1:8", verify=False, log=lambda _: None)
    artifacts = ArtifactDir(out)
    graph = build_graph(artifacts.reference_checkpoint(), "fbank", BatchRange(1, 1, 8))
    x = np.random.default_rng(0).standard_normal((1, artifacts.spec.num_frames, artifacts.spec.num_mel_bins))
    x = (x * 0.5).astype(np.float32)
    rows = []

    def timed(name: str, hint: str, call) -> None:
        for _ in range(2):
            call()
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        rows.append({"backend": name, "hint": hint, "p50_ms": 1000 * float(np.median(times))})
        print(f"speed: {name} {hint}: {rows[-1]['p50_ms']:.0f} ms", flush=True)

    core = ov.Core()
    irs = {"openvino fp32": out / "model.xml"}
    for label, ir in quantized_irs(out / "model.xml", graph, list(schemes()), work, "speed").items():
        irs[f"openvino-int8 {label}"] = ir
    hints = ["f32", "bf16"] if cpu_info().bf16 else ["f32"]
    for name, ir in irs.items():
        for hint in hints:
            model = core.read_model(str(ir))
            model.reshape({i: [1, *i.get_partial_shape()[1:]] for i in model.inputs})
            request = core.compile_model(
                model, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
            ).create_infer_request()
            timed(name, hint, lambda request=request: request.infer({"fbank": x}))
    for weights in onnx_int8_export.WEIGHTS:
        path = work / f"speed.{weights}.onnx"
        onnx_int8_export.quantize(out / "model.onnx", path, weights)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        timed(f"onnx-int8 {weights}", "-", lambda session=session: session.run(None, {"fbank": x}))
    return rows


# --- report -----------------------------------------------------------------------------------


def cell(r: dict) -> str:
    if "min_cosine" not in r:
        return f"error: {r.get('error', '?')}"
    top1 = f"{r['top1_decisive']:.0%}" if r["top1_decisive"] is not None else "-"
    return f"{r['min_cosine']:.4f} / {top1}{'' if r['passed'] else ' **fails**'}"


def markdown(doc: dict) -> str:
    set_names = doc["sets"]
    lines = [
        f"# Int8 on every x86 CPU class ({doc['machine']})",
        "",
        f"- **Model**: `{doc['checkpoint']}`; calibration: {doc['calibration']}",
        f"- **CPU**: {doc['environment']['cpu']['model']} ({doc['cpu']['isa']}); classes below the native one "
        "run under `ONEDNN_MAX_CPU_ISA` (correctness only, never timings)",
        f"- **Command**: `{doc['environment']['command']}`",
        "",
        "Each cell: worst logit cosine / top-1 agreement on decisive clips, against PyTorch float32 "
        "(the int8 gate: 0.99 and 99 %).",
        "",
        "## OpenVINO int8 schemes",
        "",
        "| scheme | CPU | " + " | ".join(set_names) + " |",
        "| --- | --- |" + " ---: |" * len(set_names),
    ]
    for row in doc["ablation"]:
        lines.append(f"| {row['scheme']} | {row['cpu']} | " + " | ".join(cell(row[n]) for n in set_names) + " |")
    if doc.get("layers"):
        runs = [k for k in doc["layers"][0] if k not in ("scheme", "tensor")]
        lines += [
            "",
            "## Where the error starts: each MatMul against the same IR emulated in f32",
            "",
            "Max relative error of each GEMM's output on the parity signals, in graph order; `logits` last.",
            "",
            "| scheme | GEMM | " + " | ".join(runs) + " |",
            "| --- | --- |" + " ---: |" * len(runs),
        ]
        for row in doc["layers"]:
            lines.append(f"| {row['scheme']} | {row['tensor']} | " + " | ".join(f"{row[r]:.4f}" for r in runs) + " |")
    lines += ["", "## ONNX Runtime int8 weights", "", "| weights | where | parity signals | hard signals |"]
    lines.append("| --- | --- | ---: | ---: |")
    for row in doc["onnx"]:
        lines.append(
            f"| {row['weights']} | {row['where']} | {cell(row['parity signals'])} | {cell(row['hard signals'])} |"
        )
    if doc.get("speed"):
        lines += ["", *speed_lines(doc)]
    return "\n".join(lines) + "\n"


def speed_lines(doc: dict) -> list[str]:
    lines = [f"## Speed here, batch 1 (`{doc['speed_checkpoint']}`, fbank input)", ""]
    lines += ["| backend | precision hint | p50 ms |", "| --- | --- | ---: |"]
    return lines + [f"| {r['backend']} | {r['hint']} | {r['p50_ms']:,.0f} |" for r in doc["speed"]]


def speed_markdown(doc: dict) -> str:
    """``--speed-only``: the timings alone, from a run on an otherwise idle machine."""
    head = [
        f"# Int8 schemes: speed ({doc['machine']})",
        "",
        f"- **CPU**: {doc['environment']['cpu']['model']} ({doc['cpu']['isa']}, "
        f"{', '.join(doc['environment']['cpu']['flags'] or [])}), {doc['environment']['torch_threads']} threads",
        f"- **Command**: `{doc['environment']['command']}`",
        f"- **Iterations**: {doc['iterations']} after 2 warm-up calls; p50 of each",
        "",
    ]
    return "\n".join(head + speed_lines(doc)) + "\n"


def plot(doc: dict, path: Path) -> None:
    from ast_deploy.bench import report

    plt = report.pyplot()
    classes = list(dict.fromkeys(r["cpu"] for r in doc["ablation"]))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    labels = list(dict.fromkeys(r["scheme"] for r in doc["ablation"]))
    width = 0.8 / len(labels)
    for i, scheme in enumerate(labels):
        worst = []
        for isa in classes:
            row = next(r for r in doc["ablation"] if r["scheme"] == scheme and r["cpu"] == isa)
            worst.append(min(row[n]["min_cosine"] for n in doc["sets"] if "min_cosine" in row[n]))
        ax.bar(np.arange(len(classes)) + i * width, worst, width, label=scheme)
    ax.axhline(0.99, color="k", linestyle="--", linewidth=1, label="int8 gate (0.99)")
    ax.set_xticks(np.arange(len(classes)) + width * (len(labels) - 1) / 2, classes)
    ax.set_ylim(0.94, 1.0)
    ax.set_ylabel("worst logit cosine vs float32")
    ax.set_title("OpenVINO int8 per CPU class (all input sets)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    report.save_figure(fig, path)


def speed_plot(doc: dict, path: Path) -> None:
    from ast_deploy.bench import report

    plt = report.pyplot()
    rows = doc["speed"]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.2))
    names = [f"{r['backend']} ({r['hint']})" if r["hint"] != "-" else r["backend"] for r in rows]
    ax.barh(np.arange(len(rows)), [r["p50_ms"] for r in rows], color="tab:blue")
    ax.set_yticks(np.arange(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("p50 ms per call, batch 1")
    ax.set_title(f"Int8 schemes on {doc['machine']} ({doc['speed_checkpoint']})", fontsize=9)
    fig.tight_layout()
    report.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", type=Path, default=FIXTURE / "quickstart_avx2")
    parser.add_argument("--calibration", type=Path, default=FIXTURE / "valid_voices")
    parser.add_argument("--manifest", type=Path, default=FIXTURE / "unseen_voices" / "labels.csv")
    parser.add_argument("--clips", type=int, default=30, help="held-out clips taken from --manifest")
    parser.add_argument("--classes", default=",".join(CLASSES), help="CPU classes to cap to, where reachable")
    parser.add_argument("--qemu", help="also run ONNX Runtime under qemu-x86_64 with this CPU model (e.g. Haswell)")
    parser.add_argument("--speed-checkpoint", type=Path, help="time the schemes on this model (e.g. AST-base)")
    parser.add_argument("--iterations", type=int, default=7)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/<machine>/cpu_isa")
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="only time the schemes on --speed-checkpoint (run it on an idle machine), into speed.{json,md}",
    )
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    from ast_deploy.artifacts import ArtifactDir
    from ast_deploy.bench import environment, report
    from ast_deploy.cpu import cpu_info, reachable_classes
    from ast_deploy.export import ExportOptions, export
    from ast_deploy.export.calibration import load_calibration
    from ast_deploy.export.graph import BatchRange, build_graph
    from ast_deploy.frontend import KaldiFbank
    from ast_deploy.parity import run_backend

    if args.qemu and not shutil.which("qemu-x86_64"):
        raise SystemExit("--qemu needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    env = environment.collect()
    out = args.out or REPO / "benchmarks" / "results" / environment.machine_name(env) / "cpu_isa"
    if args.speed_only:
        if not args.speed_checkpoint:
            raise SystemExit("--speed-only needs --speed-checkpoint")
        with tempfile.TemporaryDirectory() as tmp:
            doc = {
                "machine": environment.machine_name(env),
                "environment": env,
                "cpu": cpu_info().to_dict(),
                "speed_checkpoint": str(args.speed_checkpoint),
                "iterations": args.iterations,
                "speed": speed(args.speed_checkpoint, Path(tmp), args.iterations),
            }
        for path in report.write_outputs(out / "speed", doc, speed_markdown(doc), speed_plot):
            print(path)
        return
    classes = ["native"] + [
        c for c in args.classes.split(",") if c in reachable_classes() and c != cpu_info().isa_class
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export(
            args.checkpoint,
            work / "artifacts",
            to="onnx,openvino",
            verify=False,
            options=ExportOptions(calibration=(args.calibration,)),
            log=lambda _: None,
        )
        artifacts = ArtifactDir(work / "artifacts")
        graph = build_graph(artifacts.reference_checkpoint(), "waveform", BatchRange(1, 1, 32))
        graph.calibration = load_calibration(
            [args.calibration], artifacts.labels, graph.spec.num_samples, graph.spec.sample_rate
        )
        sets = input_sets(artifacts, args.manifest, args.clips)
        reference = artifacts.open("pytorch")
        frontend = KaldiFbank(artifacts.frontend_config)
        references = {name: run_backend(reference, s, frontend, 8) for name, s in sets.items()}
        rows, irs = ablation(artifacts, graph, sets, references, classes, work)
        doc = {
            "machine": environment.machine_name(env),
            "environment": env,
            "cpu": cpu_info().to_dict(),
            "checkpoint": str(args.checkpoint),
            "calibration": graph.calibration.source,
            "sets": list(sets),
            "ablation": rows,
            "layers": layers(irs, sets, work),
            "onnx": onnx_part(artifacts, sets, references, args.qemu, work),
        }
        if args.speed_checkpoint:
            doc["speed_checkpoint"] = str(args.speed_checkpoint)
            doc["speed"] = speed(args.speed_checkpoint, work, args.iterations)
    for path in report.write_outputs(out / "results", doc, markdown(doc), plot):
        print(path)


if __name__ == "__main__":
    main()
