"""The exported networks: the end-to-end one (16 kHz samples in, front end inside the graph) and the
fbank one, both answering ``(logits, embedding)``.

``WaveformAST`` is what gets exported with ``--input waveform``; a C++ host then only supplies samples.
``FbankAST`` is the network alone with the same two outputs (``--input fbank``). The embedding is the
clip embedding the classifier head reads (:data:`ast_deploy.model.EMBEDDING_DEFINITION`).
"""

from __future__ import annotations

import torch
from torch import nn

from .frontend import KaldiFbank
from .model import ASTModel


class WaveformAST(nn.Module):
    """``(waveform (B, N), num_samples (B,) int64) -> (logits (B, num_labels), embedding (B, embed_dim))``.

    ``num_samples`` is each row's valid length (<= N): a clip shorter than the window is zero
    padded by the caller and padded again in the fbank domain here, exactly as in training.
    """

    def __init__(self, frontend: KaldiFbank, model: ASTModel):
        super().__init__()
        self.frontend = frontend
        self.model = model

    def forward(self, waveform: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_outputs(self.frontend(waveform, num_samples))


class FbankAST(nn.Module):
    """``fbank (B, frames, mel_bins) -> (logits (B, num_labels), embedding (B, embed_dim))``."""

    def __init__(self, model: ASTModel):
        super().__init__()
        self.model = model

    def forward(self, fbank: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_outputs(fbank)
