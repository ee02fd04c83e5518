"""Audio Spectrogram Transformer (Gong, Chung, Glass, Interspeech 2021).

One file, small modules, configuration through plain arguments (in the spirit of timm's
``vision_transformer.py``). Parameter names follow timm/DeiT and the AST authors' code
(``patch_embed.proj``, ``blocks.N.attn.qkv``, ...), so the authors' checkpoints and ImageNet DeiT
weights load by stripping a prefix; the Hugging Face layout is a key table in
``checkpoints/huggingface.py``.

Input: normalised log-mel filter bank ``(batch, frames, mel_bins)``; output: logits
``(batch, num_labels)``; :meth:`ASTModel.forward_outputs` also returns the clip embedding
``(batch, embed_dim)`` that the head reads (:data:`EMBEDDING_DEFINITION`). The activation that turns logits into scores (sigmoid for multi-label,
softmax for single-label tasks) is part of the configuration, applied by :meth:`ASTModel.scores`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Activation = Literal["sigmoid", "softmax"]

# The outputs of every exported graph, by tensor name, in order (artifacts exported before embeddings
# answer the first alone).
OUTPUT_NAME, EMBEDDING_NAME = "logits", "embedding"
OUTPUT_NAMES = (OUTPUT_NAME, EMBEDDING_NAME)
# The clip embedding: what the classifier head reads (recorded in every manifest, docs/predict.md).
EMBEDDING_DEFINITION = (
    "the mean of the [cls] and distillation tokens after the transformer's final LayerNorm, "
    "(x[:, 0] + x[:, 1]) / 2, as the authors' model pools them: the input of the classifier head "
    "(whose own LayerNorm and Linear give the logits); one vector of embed_dim floats per window, "
    "a file's embedding is the mean over its windows"
)

# DeiT widths: name -> (embed_dim, num_heads). Depth is 12 for all released models.
MODEL_SIZES: dict[str, tuple[int, int]] = {
    "tiny": (192, 3),
    "small": (384, 6),
    "base": (768, 12),
}


@dataclass(frozen=True)
class ASTConfig:
    """Everything that determines the network's shapes and its output activation."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    fstride: int = 10
    tstride: int = 10
    num_mel_bins: int = 128
    target_length: int = 1024
    num_labels: int = 527
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6  # timm's DeiT; the Hugging Face port uses 1e-12
    activation: Activation = "sigmoid"

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.activation not in ("sigmoid", "softmax"):
            raise ValueError(f"activation must be 'sigmoid' or 'softmax', not {self.activation!r}")
        for name in ("num_mel_bins", "target_length"):
            if getattr(self, name) < self.patch_size:
                raise ValueError(f"{name}={getattr(self, name)} is smaller than one {self.patch_size}-wide patch")
        if min(self.depth, self.num_labels, self.fstride, self.tstride) < 1:
            raise ValueError("depth, num_labels and strides must be positive")

    @classmethod
    def from_size(cls, size: str, **overrides) -> ASTConfig:
        """A DeiT width by name (``tiny``, ``small``, ``base``) plus any overrides."""
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; known: {', '.join(MODEL_SIZES)}")
        embed_dim, num_heads = MODEL_SIZES[size]
        return cls(embed_dim=embed_dim, num_heads=num_heads, **overrides)

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (frequency, time): a Conv2d's output size, as in the paper."""
        f_dim = (self.num_mel_bins - self.patch_size) // self.fstride + 1
        t_dim = (self.target_length - self.patch_size) // self.tstride + 1
        return f_dim, t_dim

    @property
    def num_patches(self) -> int:
        f_dim, t_dim = self.grid
        return f_dim * t_dim

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def replace(self, **changes) -> ASTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def flops_per_clip(self) -> int:
        """Forward FLOPs for one clip (2 per multiply-add): patch embedding, linear layers, attention."""
        n_tokens = self.num_patches + 2
        d = self.embed_dim
        patch = 2 * self.num_patches * d * self.patch_size**2
        linear = 2 * n_tokens * (3 * d * d + d * d + 2 * d * self.mlp_dim)
        attention = 2 * 2 * n_tokens * n_tokens * d  # QK^T and AV
        head = 2 * d * self.num_labels
        return patch + self.depth * (linear + attention) + head


class PatchEmbed(nn.Module):
    """Overlapping 16x16 patches of the (frequency, time) plane, flattened frequency-major."""

    def __init__(self, embed_dim: int, patch_size: int, fstride: int, tstride: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=(fstride, tstride))

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        # (B, T, F) -> (B, 1, F, T): frequency is the conv's height, as in the authors' code.
        x = self.proj(fbank.transpose(1, 2).unsqueeze(1))
        return x.flatten(2).transpose(1, 2)  # (B, f_dim * t_dim, D)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)  # one GEMM for q, k and v
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, H, N, Dh)
        # Fused kernels (flash / memory-efficient on CUDA, flash on CPU) come from SDPA.
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(B, N, D))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block (ViT/DeiT)."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, qkv_bias: bool, eps: float, drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_dim, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ClassifierHead(nn.Module):
    """LayerNorm + Linear on the mean of the CLS and distillation tokens (``mlp_head`` upstream)."""

    def __init__(self, dim: int, num_labels: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fc = nn.Linear(dim, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(pooled))


class ASTModel(nn.Module):
    """AST: patch embedding, [CLS] + [DIST] tokens, learned positions, pre-norm blocks, head."""

    def __init__(self, config: ASTConfig, drop: float = 0.0):
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = PatchEmbed(c.embed_dim, c.patch_size, c.fstride, c.tstride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, c.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_patches + 2, c.embed_dim))
        self.blocks = nn.ModuleList(
            Block(c.embed_dim, c.num_heads, c.mlp_dim, c.qkv_bias, c.layer_norm_eps, drop) for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.embed_dim, eps=c.layer_norm_eps)
        self.head = ClassifierHead(c.embed_dim, c.num_labels, c.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's ViT initialisation: truncated normal (std 0.02) for tokens and linear layers."""
        for p in (self.cls_token, self.dist_token, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:  # qkv_bias=False
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Patch embedding as a linear layer over the flattened patch (fan-in = 16*16).
        w = self.patch_embed.proj.weight
        nn.init.trunc_normal_(w, std=math.sqrt(1.0 / w[0].numel()))

    def forward_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, T, F) normalised fbank -> the clip embedding (B, D): the [cls] and distillation tokens
        after the final LayerNorm, averaged (:data:`EMBEDDING_DEFINITION`), which the head reads."""
        x = self.patch_embed(fbank)
        tokens = torch.cat([self.cls_token, self.dist_token], dim=1).expand(x.shape[0], -1, -1)
        x = torch.cat([tokens, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return (x[:, 0] + x[:, 1]) / 2

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(fbank))

    def forward_outputs(self, fbank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, labels), embedding (B, D)) of one pass: the two outputs of every exported graph."""
        embedding = self.forward_features(fbank)
        return self.head(embedding), embedding

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return apply_activation(logits, self.config.activation)


def apply_activation(logits: torch.Tensor, activation: Activation) -> torch.Tensor:
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)
