"""Weight adaptation: ImageNet DeiT initialisation and AudioSet-pretrained re-gridding, against the authors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import IMAGENET_CASES, LOGITS_ATOL, load_fixture

from ast_deploy import ASTConfig, ASTModel, InputError
from ast_deploy.checkpoints import adapt, load_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The authors' classifier ``mlp_head`` (LayerNorm, Linear) -> ours.
MLP_HEAD_KEYS = {
    "0.weight": "head.norm.weight",
    "0.bias": "head.norm.bias",
    "1.weight": "head.fc.weight",
    "1.bias": "head.fc.bias",
}


def authors_key(ours: str) -> str:
    for theirs, mine in MLP_HEAD_KEYS.items():
        if ours == mine:
            return "mlp_head." + theirs
    return "v." + ours


@pytest.mark.parametrize("case", sorted(IMAGENET_CASES))
def test_imagenet_initialisation_matches_the_authors(case):
    """DeiT (timm layout) -> AST: RGB filters summed, positional grid cut/interpolated; then their logits."""
    spec = IMAGENET_CASES[case]
    io = load_fixture(f"{case}.io.pt")
    config = ASTConfig.from_size(
        "tiny",
        depth=spec["depth"],
        fstride=spec["fstride"],
        tstride=spec["tstride"],
        target_length=spec["tdim"],
        num_mel_bins=spec["input_fdim"],
        num_labels=spec["label_dim"],
    )
    state_dict = adapt.state_dict_from_deit(dict(load_fixture("deit_tiny_2blocks_timm.pth")), config)
    assert not any(k.startswith(("head.", "head_dist.")) for k in state_dict)  # ImageNet heads dropped
    state_dict.update({ours: io["mlp_head"][theirs] for theirs, ours in MLP_HEAD_KEYS.items()})

    reference = io["ast_state_dict"]
    assert tuple(state_dict["pos_embed"].shape) == tuple(spec["pos_embed"])
    for key in ("pos_embed", "patch_embed.proj.weight"):
        torch.testing.assert_close(state_dict[key], reference["v." + key], rtol=0, atol=1e-6, msg=key)
    assert {authors_key(k) for k in state_dict} == set(reference)
    for key, value in state_dict.items():
        torch.testing.assert_close(value, reference[authors_key(key)], rtol=0, atol=1e-6, msg=key)

    model = ASTModel(config)
    load_weights(model, state_dict, case)
    with torch.no_grad():
        logits = model.eval()(io["input"])
    torch.testing.assert_close(logits, io["logits"], rtol=0, atol=LOGITS_ATOL)


def authors_audioset_pos_embed(pos_embed: torch.Tensor, old_grid, new_grid) -> torch.Tensor:
    """Transcription of the ``audioset_pretrain`` branch of the authors' ``ast_models.py``, with their
    hard-coded 12 x 101 grid (and 1212 patches, 768 width) as parameters: time axis first, cut from
    the middle when shorter, bilinear interpolation when longer; then frequency."""
    f0, t0 = old_grid
    f_dim, t_dim = new_grid
    dim = pos_embed.shape[-1]
    new = pos_embed[:, 2:, :].detach().reshape(1, f0 * t0, dim).transpose(1, 2).reshape(1, dim, f0, t0)
    if t_dim < t0:
        new = new[:, :, :, int(t0 / 2) - int(t_dim / 2) : int(t0 / 2) - int(t_dim / 2) + t_dim]
    else:
        new = F.interpolate(new, size=(f0, t_dim), mode="bilinear")
    if f_dim < f0:
        new = new[:, :, int(f0 / 2) - int(f_dim / 2) : int(f0 / 2) - int(f_dim / 2) + f_dim, :]
    elif f_dim > f0:
        new = F.interpolate(new, size=(f_dim, t_dim), mode="bilinear")
    new = new.reshape(1, dim, f_dim * t_dim).transpose(1, 2)
    return torch.cat([pos_embed[:, :2, :].detach(), new], dim=1)


AUDIOSET = ASTConfig(embed_dim=64, num_heads=4, depth=1, target_length=1024, num_labels=527)  # grid 12 x 101


@pytest.mark.parametrize(
    ("changes", "grid"),
    [
        pytest.param({"target_length": 512, "num_labels": 50}, (12, 50), id="esc50-512-frames-cut"),
        pytest.param({"target_length": 128, "num_labels": 35}, (12, 12), id="speechcommands-128-cut"),
        pytest.param({"target_length": 1536}, (12, 153), id="longer-interpolated"),
        pytest.param({"fstride": 12, "tstride": 12}, (10, 85), id="stride12-both-cut"),
        pytest.param({"num_mel_bins": 192, "target_length": 300}, (18, 29), id="more-mel-bins-interpolated"),
        pytest.param({}, (12, 101), id="same-grid"),
    ],
)
def test_audioset_regridding_matches_the_authors(changes, grid):
    new = AUDIOSET.replace(**changes)
    assert new.grid == grid
    torch.manual_seed(0)
    state_dict = ASTModel(AUDIOSET).state_dict()
    adapted = adapt.state_dict_for_new_grid(state_dict, AUDIOSET, new)

    expected = authors_audioset_pos_embed(state_dict["pos_embed"], AUDIOSET.grid, new.grid)
    assert adapted["pos_embed"].shape == (1, 2 + grid[0] * grid[1], 64)
    torch.testing.assert_close(adapted["pos_embed"], expected, rtol=0, atol=1e-6)
    if not changes:
        assert torch.equal(adapted["pos_embed"], state_dict["pos_embed"])

    # Everything else is kept; a new label count gets a fresh classifier (the Linear is dropped).
    dropped = {"head.fc.weight", "head.fc.bias"} if new.num_labels != AUDIOSET.num_labels else set()
    assert set(adapted) == set(state_dict) - dropped
    for key in set(adapted) - {"pos_embed"}:
        assert torch.equal(adapted[key], state_dict[key]), key
    model = ASTModel(new)
    missing = model.load_state_dict(adapted, strict=False).missing_keys
    assert set(missing) == dropped


def test_deit_without_distillation_token_is_refused():
    deit = {k: v for k, v in load_fixture("deit_tiny_2blocks_timm.pth").items() if k != "dist_token"}
    with pytest.raises(InputError, match="dist_token"):
        adapt.state_dict_from_deit(deit, ASTConfig.from_size("tiny", depth=2))


def test_non_square_imagenet_grid_is_refused():
    with pytest.raises(InputError, match="not a square grid"):
        adapt.square_grid(14 * 13)
