"""Training throughput (clips/s) of AST: the model's optimizer step and the data pipeline, side by side.

    python benchmarks/train_throughput.py                       # CPU: the quickstart and tiny presets
    python benchmarks/train_throughput.py --preset base-1024 --device cuda --precision bf16 fp16

The model step is exactly the loop's (``ast_deploy_training.train``: autocast forward, float32 loss, grad
scaler, Adam) on random fbank batches. The data pipeline is ``ast_deploy_training.data.AudioDataset`` with
the recipe's augmentation through a DataLoader with N workers on generated audio files: when its
clips/s exceed the model's, the model bounds the step time. Results go to
``benchmarks/results/train_throughput_<machine>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ast_deploy.frontend import FrontEndConfig
from ast_deploy.manifests import Example
from ast_deploy.model import ASTConfig, ASTModel
from ast_deploy_training.augment import AugmentConfig
from ast_deploy_training.config import TrainConfig
from ast_deploy_training.data import AudioDataset, EpochSampler, make_loader
from ast_deploy_training.evaluate import autocast
from ast_deploy_training.train import build_optimizer, cpu_supports_bf16, loss_function

# name -> (model, batch, augmentation of the matching recipe)
PRESETS: dict[str, tuple[ASTConfig, int, AugmentConfig]] = {
    "quickstart": (ASTConfig.from_size("tiny", depth=2, target_length=100, num_labels=10, activation="softmax"), 16,
                   AugmentConfig()),
    "tiny": (ASTConfig.from_size("tiny", target_length=128, num_labels=35), 32,
             AugmentConfig(freqm=48, timem=48, mixup=0.6, noise=True)),
    "base-1024": (ASTConfig.from_size("base", target_length=1024, num_labels=527), 12,
                  AugmentConfig(freqm=48, timem=192, mixup=0.5)),
}  # fmt: skip
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or "cpu"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1]
                    break
        except OSError:
            pass
        name = f"{name} {os.cpu_count()}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_step_throughput(
    config: ASTConfig, batch: int, precision: str, device: torch.device, steps: int, warmup: int
) -> dict:
    """Clips/s of forward + backward + Adam step, as ``ast_deploy_training.train.train_one_epoch`` does them."""
    torch.manual_seed(0)
    model = ASTModel(config).to(device).train()
    train_config = TrainConfig(train_data="-", multi_label=config.activation == "sigmoid", lr=1e-5)
    optimizer = build_optimizer(train_config, model)
    loss_fn = loss_function(train_config)
    amp = DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    x = torch.randn(batch, config.target_length, config.num_mel_bins, device=device) * 0.5
    y = torch.nn.functional.one_hot(torch.randint(0, config.num_labels, (batch,)), config.num_labels).float().to(device)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        with autocast(device, amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = float(np.median(times))
    return {"clips_per_s": batch / step, "step_ms": step * 1000, "steps": steps}


def data_throughput(config: ASTConfig, augment: AugmentConfig, batch: int, workers: int, clips: int) -> dict:
    """Clips/s the DataLoader delivers: decode, front end, augmentation, collate."""
    frontend = FrontEndConfig(target_length=config.target_length, num_mel_bins=config.num_mel_bins)
    seconds = frontend.window_samples / frontend.sample_rate
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        examples = []
        for i in range(min(clips, 64)):
            path = Path(tmp) / f"{i}.wav"
            sf.write(
                path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="PCM_16"
            )
            examples.append(Example(path, (i % config.num_labels,), str(path)))
        examples = [examples[i % len(examples)] for i in range(clips)]
        dataset = AudioDataset(examples, config.num_labels, frontend, augment, seed=0)
        loader = make_loader(dataset, EpochSampler(len(dataset), batch), batch, workers)
        start = time.perf_counter()
        n = sum(len(x) for x, _ in loader)
        elapsed = time.perf_counter() - start
    return {"clips_per_s": n / elapsed, "workers": workers, "clips": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=None, choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=None, choices=sorted(DTYPES))
    parser.add_argument("--batch", type=int, default=0, help="override the preset's batch size")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--data-clips", type=int, default=256, help="clips for the data-pipeline measurement (0: skip)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = args.preset or (["base-1024"] if device.type == "cuda" else ["quickstart", "tiny"])
    if args.precision:
        precisions = args.precision
    elif device.type == "cuda":
        precisions = ["bf16", "fp16"] if torch.cuda.is_bf16_supported() else ["fp16"]
    else:
        precisions = ["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"]
    machine = machine_name(device)
    results = []
    for name in presets:
        config, batch, augment = PRESETS[name]
        batch = args.batch or batch
        row = {"preset": name, "batch": batch, "frames": config.target_length, "width": config.embed_dim,
               "depth": config.depth, "gflops_per_clip_forward": round(config.flops_per_clip() / 1e9, 2)}  # fmt: skip
        for precision in precisions:
            m = model_step_throughput(config, batch, precision, device, args.steps, args.warmup)
            results.append({**row, "what": "model step", "precision": precision, **m})
            print(f"{name:11s} model step  {precision:5s} batch {batch:3d}: {m['clips_per_s']:8.1f} clips/s "
                  f"({m['step_ms']:.0f} ms/step)", flush=True)  # fmt: skip
        if args.data_clips:
            d = data_throughput(config, augment, batch, args.workers, args.data_clips)
            results.append({**row, "what": "data pipeline", "precision": "-", **d})
            print(f"{name:11s} data        {args.workers} workers:       {d['clips_per_s']:8.1f} clips/s", flush=True)

    env = {
        "machine": machine,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "note": "median step time; data pipeline and model share the same cores on a CPU run",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"train_throughput_{machine}"
    stem.with_suffix(".json").write_text(json.dumps({"environment": env, "results": results}, indent=2) + "\n")
    lines = [
        f"# Training throughput on {machine}",
        "",
        f"torch {env['torch']}, device {env['device']}, {env['threads']} threads, {env['date']}. "
        "Model step = forward + backward + Adam on random fbank batches (the training loop's code); "
        "data pipeline = decode + Kaldi front end + the recipe's augmentation through the DataLoader.",
        "",
        "| preset | frames | width x depth | batch | what | precision | clips/s | ms/step |",
        "| --- | ---: | --- | ---: | --- | --- | ---: | ---: |",
    ]
    for r in results:
        ms = f"{r['step_ms']:.0f}" if "step_ms" in r else "-"
        what = r["what"] + (f" ({r['workers']} workers)" if "workers" in r else "")
        lines.append(f"| {r['preset']} | {r['frames']} | {r['width']} x {r['depth']} | {r['batch']} | {what} | "
                     f"{r['precision']} | {r['clips_per_s']:.1f} | {ms} |")  # fmt: skip
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
