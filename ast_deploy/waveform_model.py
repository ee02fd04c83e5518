"""The end-to-end network: 16 kHz samples in, logits out (front end inside the graph).

This is what gets exported with ``--input waveform``; a C++ host then only supplies samples.
"""

from __future__ import annotations

import torch
from torch import nn

from .frontend import KaldiFbank
from .model import ASTModel


class WaveformAST(nn.Module):
    """``(waveform (B, N), num_samples (B,) int64) -> logits (B, num_labels)``.

    ``num_samples`` is each row's valid length (<= N): a clip shorter than the window is zero
    padded by the caller and padded again in the fbank domain here, exactly as in training.
    """

    def __init__(self, frontend: KaldiFbank, model: ASTModel):
        super().__init__()
        self.frontend = frontend
        self.model = model

    def forward(self, waveform: torch.Tensor, num_samples: torch.Tensor) -> torch.Tensor:
        return self.model(self.frontend(waveform, num_samples))
