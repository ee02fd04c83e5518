"""The network: the authors' forward pass reproduced from their checkpoints, shapes, configuration."""

from __future__ import annotations

import pytest
import torch
from conftest import AUTHORS_CASES, LOGITS_ATOL, authors_options, fixture_path, load_fixture

from ast_deploy import ASTConfig, ASTModel, load_checkpoint
from ast_deploy.model import apply_activation

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("case", sorted(AUTHORS_CASES))
def test_authors_checkpoint_reproduces_reference_logits(case):
    """Each ``cases.json`` checkpoint, loaded with its grid flags, gives the authors' logits (max abs <= 1e-5)."""
    spec = AUTHORS_CASES[case]
    ckpt = load_checkpoint(fixture_path(f"{case}.pth"), authors_options(case))
    c = ckpt.config
    assert ckpt.format == "authors"
    assert (c.depth, c.num_labels, c.target_length, c.num_mel_bins) == (
        spec["depth"],
        spec["label_dim"],
        spec["tdim"],
        spec["input_fdim"],
    )
    assert (c.fstride, c.tstride) == (spec["fstride"], spec["tstride"])
    model = ckpt.build_model()
    # The authors count the unused ImageNet heads too: 2 x (1000 x D + 1000) parameters.
    ours = sum(p.numel() for p in model.parameters())
    assert ours + 2 * (1000 * c.embed_dim + 1000) == spec["n_params"]

    io = load_fixture(f"{case}.io.pt")
    with torch.no_grad():
        logits = model(io["input"])
    assert tuple(logits.shape) == tuple(spec["logits_shape"])
    torch.testing.assert_close(logits, io["logits"], rtol=0, atol=LOGITS_ATOL)


@pytest.mark.parametrize(
    ("fstride", "frames", "grid"),
    [(10, 1024, (12, 101)), (12, 1024, (10, 85)), (14, 1024, (9, 73)), (16, 1024, (8, 64)), (10, 128, (12, 12))],
)
def test_patch_grid_matches_the_conv_output(fstride, frames, grid):
    """The grid formula of the paper (12 x 101 = 1212 patches at 1024 frames, stride 10) is what the conv makes."""
    config = ASTConfig(embed_dim=64, num_heads=4, depth=1, fstride=fstride, tstride=fstride, target_length=frames)
    assert config.grid == grid
    model = ASTModel(config).eval()
    assert tuple(model.pos_embed.shape) == (1, 2 + grid[0] * grid[1], 64)
    with torch.no_grad():
        patches = model.patch_embed(torch.randn(1, frames, 128))
        logits = model(torch.randn(1, frames, 128))
    assert tuple(patches.shape) == (1, grid[0] * grid[1], 64)
    assert tuple(logits.shape) == (1, config.num_labels)


def test_patches_are_frequency_major():
    """Patch i*t_dim + j covers mel rows [i*fstride, +16) and frames [j*tstride, +16), as in the authors' code."""
    torch.manual_seed(0)
    config = ASTConfig(embed_dim=16, num_heads=2, depth=1, fstride=10, tstride=10, target_length=64, num_labels=3)
    model = ASTModel(config).eval()
    t_dim = config.grid[1]
    fbank = torch.zeros(1, 64, 128)
    i, j = 3, 2
    fbank[0, j * 10 + 7, i * 10 + 7] = 1.0  # inside patch (i, j) only (strides 10, size 16: overlap 6)
    with torch.no_grad():
        patches = model.patch_embed(fbank) - model.patch_embed.proj.bias
    touched = patches[0].abs().sum(-1).nonzero().flatten().tolist()
    assert touched == [i * t_dim + j]


def test_batch_rows_are_independent():
    torch.manual_seed(0)
    model = ASTModel(ASTConfig(embed_dim=64, num_heads=2, depth=2, target_length=48, num_labels=4)).eval()
    x = torch.randn(3, 48, 128)
    with torch.no_grad():
        batched = model(x)
        rows = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, rows, rtol=0, atol=1e-5)


def test_output_is_mean_of_cls_and_dist_tokens_through_the_head():
    torch.manual_seed(0)
    model = ASTModel(ASTConfig(embed_dim=32, num_heads=2, depth=1, target_length=32, num_labels=5)).eval()
    x = torch.randn(2, 32, 128)
    with torch.no_grad():
        tokens = model.patch_embed(x)
        prefix = torch.cat([model.cls_token, model.dist_token], dim=1).expand(2, -1, -1)
        h = torch.cat([prefix, tokens], dim=1) + model.pos_embed
        for block in model.blocks:
            h = block(h)
        h = model.norm(h)
        expected = model.head.fc(model.head.norm((h[:, 0] + h[:, 1]) / 2))
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_scores_apply_the_configured_activation(activation):
    model = ASTModel(
        ASTConfig(embed_dim=32, num_heads=2, depth=1, target_length=32, num_labels=5, activation=activation)
    )
    logits = torch.randn(2, 5)
    expected = torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)
    torch.testing.assert_close(model.scores(logits), expected)
    torch.testing.assert_close(apply_activation(logits, activation), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"embed_dim": 100, "num_heads": 3}, "divisible"),
        ({"activation": "relu"}, "activation"),
        ({"target_length": 8}, "smaller than one 16-wide patch"),
        ({"num_mel_bins": 15}, "smaller than one 16-wide patch"),
        ({"depth": 0}, "positive"),
        ({"fstride": 0}, "positive"),
    ],
)
def test_config_rejects_impossible_shapes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ASTConfig(**kwargs)


def test_named_sizes_and_base_parameter_count():
    """AST-base (768 wide, 12 heads, 12 blocks, 527 labels, 1024 frames) has 86-88 M parameters (paper)."""
    config = ASTConfig.from_size("base")
    assert (config.embed_dim, config.num_heads) == (768, 12)
    assert ASTConfig.from_size("tiny", depth=2).embed_dim == 192
    with pytest.raises(ValueError, match="unknown model size"):
        ASTConfig.from_size("huge")
    with torch.device("meta"):
        n_params = sum(p.numel() for p in ASTModel(config).parameters())
    assert 86e6 <= n_params <= 88e6
