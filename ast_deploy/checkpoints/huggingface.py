"""Hugging Face ``ASTForAudioClassification`` directories, which are also this project's own format.

A directory holds ``config.json`` (model_type ``audio-spectrogram-transformer``, ``id2label``),
``model.safetensors`` (or ``pytorch_model.bin``) and ``preprocessor_config.json``
(``ASTFeatureExtractor``: sampling rate, mel bins, max_length, mean, std).

Weight names differ between transformers 4.x (what the hub files use) and 5.x; both are read.
We write the 4.x names, which transformers 4.x loads natively and 5.x converts on load.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..frontend import FrontEndConfig
from ..model import ASTConfig

MODEL_TYPE = "audio-spectrogram-transformer"
PREFIX = "audio_spectrogram_transformer."

# ASTModel key -> Hugging Face key(s), outside the encoder blocks.
GLOBAL_KEYS: dict[str, str] = {
    "cls_token": "embeddings.cls_token",
    "dist_token": "embeddings.distillation_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
HEAD_KEYS: dict[str, str] = {  # no "audio_spectrogram_transformer." prefix
    "head.norm.weight": "classifier.layernorm.weight",
    "head.norm.bias": "classifier.layernorm.bias",
    "head.fc.weight": "classifier.dense.weight",
    "head.fc.bias": "classifier.dense.bias",
}
# Per block: ASTModel module -> (transformers 4.x module(s), transformers 5.x module(s)).
# A tuple of three is q, k, v, which we hold fused as one ``qkv`` Linear (concatenated on dim 0).
BLOCK_MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "norm1": (("layernorm_before",), ("layernorm_before",)),
    "attn.qkv": (
        ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
        ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
    ),
    "attn.proj": (("attention.output.dense",), ("attention.o_proj",)),
    "norm2": (("layernorm_after",), ("layernorm_after",)),
    "mlp.fc1": (("intermediate.dense",), ("mlp.fc1",)),
    "mlp.fc2": (("output.dense",), ("mlp.fc2",)),
}
BLOCK_PREFIX = {"4.x": "encoder.layer.", "5.x": "layers."}


def key_table(depth: int, layout: str = "4.x") -> list[tuple[str, tuple[str, ...]]]:
    """The full mapping ``[(ASTModel key, (Hugging Face key, ...)), ...]`` for a model of ``depth`` blocks."""
    column = 0 if layout == "4.x" else 1
    table = [(ours, (PREFIX + theirs,)) for ours, theirs in GLOBAL_KEYS.items()]
    for i in range(depth):
        for ours, hf in BLOCK_MODULES.items():
            for param in ("weight", "bias"):
                names = tuple(f"{PREFIX}{BLOCK_PREFIX[layout]}{i}.{m}.{param}" for m in hf[column])
                table.append((f"blocks.{i}.{ours}.{param}", names))
    table += [(ours, (theirs,)) for ours, theirs in HEAD_KEYS.items()]
    return table


def detect_layout(keys) -> str:
    return "5.x" if any(PREFIX + BLOCK_PREFIX["5.x"] in k for k in keys) else "4.x"


def to_model_state_dict(hf: dict[str, torch.Tensor], depth: int, where: str) -> dict[str, torch.Tensor]:
    """Hugging Face keys -> ``ASTModel`` keys; every missing or unexpected key is reported by name."""
    layout = detect_layout(hf)
    table = key_table(depth, layout)
    out, used, missing, mismatched = {}, set(), [], []
    for ours, names in table:
        absent = [n for n in names if n not in hf]
        if absent:
            # A model without qkv bias has no ".bias" for q/k/v; that is a config matter, not an error.
            if not (ours.endswith("attn.qkv.bias") and len(absent) == len(names)):
                missing += absent
            continue
        used.update(names)
        if len(names) > 1 and (len({hf[n].shape for n in names}) > 1 or hf[names[0]].dim() == 0):
            # q, k and v are fused by concatenation, which needs three tensors of one shape.
            mismatched.append(", ".join(f"{n} {tuple(hf[n].shape)}" for n in names))
            continue
        out[ours] = hf[names[0]] if len(names) == 1 else torch.cat([hf[n] for n in names], dim=0)
    unexpected = sorted(set(hf) - used)
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"q/k/v of different shapes: {mismatched[0]}")
        if missing:
            parts.append(
                f"missing {', '.join(missing[:5])}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            )
        if unexpected:
            parts.append(
                f"unexpected {', '.join(unexpected[:5])}"
                + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
            )
        raise InputError(f"{where}: weights do not match an AST of depth {depth} ({'; '.join(parts)})")
    return out


def from_model_state_dict(state_dict: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """``ASTModel`` keys -> transformers 4.x keys (contiguous tensors, as safetensors requires)."""
    out = {}
    for ours, names in key_table(depth, "4.x"):
        if ours not in state_dict:
            continue
        parts = state_dict[ours].chunk(len(names), dim=0) if len(names) > 1 else (state_dict[ours],)
        out.update({n: p.detach().contiguous() for n, p in zip(names, parts, strict=False)})
    return out


def config_from_json(cfg: dict, where: str) -> ASTConfig:
    if cfg.get("model_type") != MODEL_TYPE:
        raise InputError(f"{where}: model_type is {cfg.get('model_type')!r}, expected {MODEL_TYPE!r}")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise InputError(f"{where}: hidden_act {cfg['hidden_act']!r} is not supported (only gelu)")
    try:
        hidden = int(cfg.get("hidden_size", 768))
        extra = cfg.get("ast_deploy", {})
        multi_label = cfg.get("problem_type") == "multi_label_classification"
        return ASTConfig(
            embed_dim=hidden,
            depth=int(cfg.get("num_hidden_layers", 12)),
            num_heads=int(cfg.get("num_attention_heads", 12)),
            mlp_ratio=int(cfg.get("intermediate_size", 4 * hidden)) / hidden,
            patch_size=int(cfg.get("patch_size", 16)),
            fstride=int(cfg.get("frequency_stride", 10)),
            tstride=int(cfg.get("time_stride", 10)),
            num_mel_bins=int(cfg.get("num_mel_bins", 128)),
            target_length=int(cfg.get("max_length", 1024)),
            num_labels=len(cfg["id2label"]) if "id2label" in cfg else int(cfg.get("num_labels", 2)),
            qkv_bias=bool(cfg.get("qkv_bias", True)),
            layer_norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
            # transformers' own rule (audio-classification pipeline): sigmoid for multi-label.
            activation=extra.get("activation", "sigmoid" if multi_label else "softmax"),
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: bad configuration ({e})") from None


def config_to_json(config: ASTConfig, labels: list[str]) -> dict:
    return {
        "architectures": ["ASTForAudioClassification"],
        "model_type": MODEL_TYPE,
        "hidden_size": config.embed_dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.mlp_dim,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": config.layer_norm_eps,
        "patch_size": config.patch_size,
        "qkv_bias": config.qkv_bias,
        "frequency_stride": config.fstride,
        "time_stride": config.tstride,
        "max_length": config.target_length,
        "num_mel_bins": config.num_mel_bins,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "multi_label_classification"
        if config.activation == "sigmoid"
        else "single_label_classification",
        "ast_deploy": {"format_version": 1, "activation": config.activation},
    }


def labels_from_json(cfg: dict, num_labels: int) -> list[str]:
    id2label = cfg.get("id2label") or {}
    return [str(id2label.get(str(i), id2label.get(i, f"class_{i}"))) for i in range(num_labels)]


def frontend_from_json(pre: dict, config: ASTConfig, where: str) -> FrontEndConfig:
    extra = pre.get("ast_deploy", {})
    try:
        return FrontEndConfig(
            sample_rate=int(pre.get("sampling_rate", 16000)),
            num_mel_bins=int(pre.get("num_mel_bins", config.num_mel_bins)),
            target_length=int(pre.get("max_length", config.target_length)),
            mean=float(pre.get("mean", -4.2677393)),
            std=float(pre.get("std", 4.5689974)),
            normalize=bool(pre.get("do_normalize", True)),
            **{
                k: float(v)
                for k, v in extra.items()
                if k in ("frame_length_ms", "frame_shift_ms", "preemphasis", "low_freq", "high_freq")
            },
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: bad preprocessor configuration ({e})") from None


def frontend_to_json(fe: FrontEndConfig) -> dict:
    return {
        "feature_extractor_type": "ASTFeatureExtractor",
        "feature_size": 1,
        "sampling_rate": fe.sample_rate,
        "num_mel_bins": fe.num_mel_bins,
        "max_length": fe.target_length,
        "padding_side": "right",
        "padding_value": 0.0,
        "do_normalize": fe.normalize,
        "mean": fe.mean,
        "std": fe.std,
        "return_attention_mask": False,
        "ast_deploy": {
            "frame_length_ms": fe.frame_length_ms,
            "frame_shift_ms": fe.frame_shift_ms,
            "preemphasis": fe.preemphasis,
            "low_freq": fe.low_freq,
            "high_freq": fe.high_freq,
        },
    }
