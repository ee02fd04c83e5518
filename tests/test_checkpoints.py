"""Checkpoint formats: the authors' ``.pth`` (grid inference, presets), this project's format, round trips."""

from __future__ import annotations

import os
import stat

import pytest
import torch
from conftest import (
    AUTHORS_CASES,
    LOGITS_ATOL,
    TINY_CASE,
    TINY_PTH,
    authors_options,
    fixture_path,
    load_fixture,
    to_authors_layout,
)

from ast_deploy import ASTConfig, ASTModel, InputError, LoadOptions, load_checkpoint, save_checkpoint
from ast_deploy.checkpoints import authors
from ast_deploy.frontend import NORM_PRESETS
from ast_deploy.labels import builtin_label_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Positional-embedding length of each released file -> (fstride, tstride, frames) (AST_FACTS.md).
RELEASED = {
    "audioset_10_10": (1214, (10, 10, 1024)),
    "audioset_12_12": (852, (12, 12, 1024)),
    "audioset_14_14": (659, (14, 14, 1024)),
    "audioset_16_16": (514, (16, 16, 1024)),
    "speechcommands_10_10": (146, (10, 10, 128)),
}


def save_synthetic_authors_pth(path, config: ASTConfig):
    """A randomly initialised AST of ``config``, saved as the authors save theirs."""
    torch.manual_seed(0)
    state_dict = ASTModel(config).state_dict()
    torch.save(to_authors_layout(state_dict), path)
    return state_dict


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_grids_are_inferred_from_the_positional_embedding(tmp_path, name):
    """Tiny width and one block, but the released files' positional-embedding lengths; no flags."""
    length, (fstride, tstride, frames) = RELEASED[name]
    config = ASTConfig.from_size("tiny", depth=1, fstride=fstride, tstride=tstride, target_length=frames, num_labels=4)
    assert config.num_patches + 2 == length
    state_dict = save_synthetic_authors_pth(tmp_path / f"{name}.pth", config)

    ckpt = load_checkpoint(tmp_path / f"{name}.pth")
    assert ckpt.format == "authors"
    assert (ckpt.config.fstride, ckpt.config.tstride, ckpt.config.target_length) == (fstride, tstride, frames)
    assert ckpt.frontend.target_length == frames
    model = ckpt.build_model()  # every tensor's name and shape fits the inferred grid
    for key, value in state_dict.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_ambiguous_positional_embedding_asks_for_the_flags():
    """108 patches fit several (stride, frames) pairs: the error names the flags that settle it."""
    with pytest.raises(InputError) as err:
        load_checkpoint(TINY_PTH)
    message = str(err.value)
    assert "108 patches" in message
    for flag in ("--input-tdim", "--fstride", "--tstride"):
        assert flag in message


def test_frames_alone_settle_an_ambiguous_grid():
    ckpt = load_checkpoint(TINY_PTH, LoadOptions(input_tdim=100))
    assert (ckpt.config.fstride, ckpt.config.tstride, ckpt.config.target_length) == (10, 10, 100)


def test_contradictory_flags_are_refused():
    with pytest.raises(InputError, match=r"fits no .* with input_tdim=100, fstride=16"):
        load_checkpoint(TINY_PTH, LoadOptions(input_tdim=100, fstride=16))


def test_width_that_is_not_a_deit_size_needs_num_heads(tmp_path):
    config = ASTConfig(embed_dim=64, num_heads=4, depth=1, target_length=128, num_labels=3)
    save_synthetic_authors_pth(tmp_path / "w64.pth", config)
    with pytest.raises(InputError, match="--num-heads"):
        load_checkpoint(tmp_path / "w64.pth")
    ckpt = load_checkpoint(tmp_path / "w64.pth", LoadOptions(num_heads=4))
    assert (ckpt.config.embed_dim, ckpt.config.num_heads, ckpt.config.target_length) == (64, 4, 128)


def test_task_presets_follow_the_label_count():
    """35 labels: Speech Commands labels, its normalisation statistics and softmax (authors' recipe)."""
    ckpt = load_checkpoint(fixture_path("small_t64_f10t10.pth"), authors_options("small_t64_f10t10"))
    assert ckpt.config.activation == "softmax"
    assert (ckpt.frontend.mean, ckpt.frontend.std) == NORM_PRESETS["speechcommands"]
    assert ckpt.labels == builtin_label_set("speechcommands").names
    generic = load_checkpoint(TINY_PTH, authors_options(TINY_CASE))  # 10 labels: no preset
    assert generic.config.activation == "sigmoid"
    assert (generic.frontend.mean, generic.frontend.std) == NORM_PRESETS["audioset"]
    assert generic.labels == [f"class_{i}" for i in range(10)]


def test_user_overrides_labels_norm_and_activation(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("index,mid,display_name\n" + "".join(f"{i},/m/{i},sound {i}\n" for i in range(10)))
    options = authors_options(TINY_CASE, label_csv=csv, norm="esc50", activation="softmax")
    ckpt = load_checkpoint(TINY_PTH, options)
    assert ckpt.labels == [f"sound {i}" for i in range(10)]
    assert (ckpt.frontend.mean, ckpt.frontend.std) == NORM_PRESETS["esc50"]
    assert ckpt.config.activation == "softmax"


@pytest.mark.parametrize("case", sorted(AUTHORS_CASES))
def test_our_format_round_trip(tmp_path, case):
    """``save_checkpoint`` -> ``load_checkpoint``: same configuration, tensors, labels, front end and logits."""
    ckpt = load_checkpoint(fixture_path(f"{case}.pth"), authors_options(case))
    out = save_checkpoint(tmp_path / "model", ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    again = load_checkpoint(out)
    assert again.format == "ast-deploy"
    assert again.config == ckpt.config
    assert again.frontend == ckpt.frontend
    assert again.labels == ckpt.labels
    assert again.state_dict.keys() == ckpt.state_dict.keys()
    for key, value in ckpt.state_dict.items():
        assert torch.equal(again.state_dict[key], value), key
    io = load_fixture(f"{case}.io.pt")
    with torch.no_grad():
        torch.testing.assert_close(again.build_model()(io["input"]), io["logits"], rtol=0, atol=LOGITS_ATOL)


def read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_saved_directory_is_readable_by_others(tmp_path):
    """A published model directory gets the umask's modes, not the owner-only ones of a temp dir."""
    ckpt = load_checkpoint(TINY_PTH, authors_options(TINY_CASE))
    out = save_checkpoint(tmp_path / "model", ckpt.config, ckpt.state_dict, ckpt.labels, ckpt.frontend)
    mask = read_umask()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~mask
    for path in out.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~mask, path.name


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: sd, id="authors-layout"),
        pytest.param(lambda sd: {"state_dict": sd}, id="state_dict-wrapper"),
        pytest.param(lambda sd: {"model": sd}, id="model-wrapper"),
        pytest.param(lambda sd: authors.to_model_state_dict(sd), id="ASTModel-keys"),
        pytest.param(lambda sd: {k.removeprefix("module."): v for k, v in sd.items()}, id="without-DataParallel"),
    ],
)
def test_state_dict_variants_load_to_the_same_model(tmp_path, wrap):
    case = TINY_CASE
    torch.save(wrap(dict(load_fixture(f"{case}.pth"))), tmp_path / "variant.pth")
    model = load_checkpoint(tmp_path / "variant.pth", authors_options(case)).build_model()
    io = load_fixture(f"{case}.io.pt")
    with torch.no_grad():
        torch.testing.assert_close(model(io["input"]), io["logits"], rtol=0, atol=LOGITS_ATOL)


def test_authors_layout_round_trip():
    ours = authors.to_model_state_dict(dict(load_fixture(f"{TINY_CASE}.pth")))
    assert "head.fc.weight" in ours and not any(k.startswith(("v.", "module.")) for k in ours)
    back = authors.from_model_state_dict(ours)
    assert back.keys() == to_authors_layout(ours, imagenet_heads=False).keys()


def test_imagenet_deit_is_not_an_ast_checkpoint():
    with pytest.raises(InputError, match="ImageNet"):
        load_checkpoint(fixture_path("deit_tiny_2blocks_timm.pth"))
