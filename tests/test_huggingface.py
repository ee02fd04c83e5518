"""Hugging Face parity both ways: transformers' ASTForAudioClassification directories (4.x and 5.x key
layouts) load into our model, and our ``save_checkpoint`` directories load into transformers."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import LOGITS_ATOL
from safetensors.torch import load_file, save_file

from ast_deploy import ASTConfig, ASTModel, FrontEndConfig, KaldiFbank, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

transformers = pytest.importorskip("transformers")

# Random configurations: strides, mel bins, frame counts, depths, widths/heads, MLP widths, qkv bias, eps.
HF_CONFIGS = {
    "d64h4-L1-s10-m128-t100": dict(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=1, intermediate_size=256,
        frequency_stride=10, time_stride=10, num_mel_bins=128, max_length=100, num_labels=5,
    ),
    "d96h3-L2-s12x8-m64-t120": dict(
        hidden_size=96, num_attention_heads=3, num_hidden_layers=2, intermediate_size=384,
        frequency_stride=12, time_stride=8, num_mel_bins=64, max_length=120, num_labels=3,
    ),
    "d128h8-L2-s16-m80-t256-noqkvbias": dict(
        hidden_size=128, num_attention_heads=8, num_hidden_layers=2, intermediate_size=320,
        frequency_stride=16, time_stride=16, num_mel_bins=80, max_length=256, num_labels=7, qkv_bias=False,
    ),
    "d192h6-L1-s6x14-m128-t64-eps1e-6": dict(
        hidden_size=192, num_attention_heads=6, num_hidden_layers=1, intermediate_size=576,
        frequency_stride=6, time_stride=14, num_mel_bins=128, max_length=64, num_labels=2, layer_norm_eps=1e-6,
    ),
}  # fmt: skip

# transformers 5.x parameter names -> 4.x names (what the hub files use), written out independently.
TO_4X = [
    (r"\.layers\.(\d+)\.", r".encoder.layer.\1."),
    (r"\.attention\.q_proj\.", ".attention.attention.query."),
    (r"\.attention\.k_proj\.", ".attention.attention.key."),
    (r"\.attention\.v_proj\.", ".attention.attention.value."),
    (r"\.attention\.o_proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
]
LAYOUTS = ["save_pretrained", "5.x-safetensors", "4.x-bin"]


def to_4x(key: str) -> str:
    for pattern, replacement in TO_4X:
        key = re.sub(pattern, replacement, key)
    return key


def hf_logits(model, fbank: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_values=fbank).logits


@pytest.fixture(scope="module", params=sorted(HF_CONFIGS))
def hf_model(request):
    """A randomly initialised transformers AST (every parameter perturbed, so each one matters)."""
    config = transformers.ASTConfig(**HF_CONFIGS[request.param])
    torch.manual_seed(sorted(HF_CONFIGS).index(request.param))
    model = transformers.ASTForAudioClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def write_hf_dir(model, directory, layout: str):
    """``save_pretrained``, or the weights written by hand in the 5.x or 4.x key layout."""
    if layout == "save_pretrained":
        model.save_pretrained(directory)
        return directory
    directory.mkdir()
    model.config.save_pretrained(directory)
    state_dict = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if layout == "5.x-safetensors":
        save_file(state_dict, directory / "model.safetensors", metadata={"format": "pt"})
    else:  # "4.x-bin"
        torch.save({to_4x(k): v for k, v in state_dict.items()}, directory / "pytorch_model.bin")
    return directory


def stored_keys(directory) -> set[str]:
    if (directory / "model.safetensors").exists():
        return set(load_file(directory / "model.safetensors"))
    return set(torch.load(directory / "pytorch_model.bin", weights_only=True))


def random_fbank(batch: int, frames: int, mel_bins: int) -> torch.Tensor:
    return torch.randn(batch, frames, mel_bins, generator=torch.Generator().manual_seed(1))


def assert_transformers_reproduces(directory, logits_fn, frames: int, mel_bins: int):
    """``from_pretrained(directory)`` uses every stored weight and gives ``logits_fn``'s logits."""
    loaded, info = transformers.ASTForAudioClassification.from_pretrained(directory, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    fbank = random_fbank(2, frames, mel_bins)
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(loaded.eval(), fbank), logits_fn(fbank), rtol=0, atol=LOGITS_ATOL)
    return loaded


@pytest.mark.parametrize("layout", LAYOUTS)
def test_written_directories_are_transformers_checkpoints(hf_model, tmp_path, layout):
    """The test directories hold the layout they claim, and transformers itself loads each of them."""
    directory = write_hf_dir(hf_model, tmp_path / "hf", layout)
    names_5x = set(hf_model.state_dict())
    names_4x = {to_4x(k) for k in names_5x}
    assert names_4x != names_5x
    # transformers 5.24's save_pretrained writes the 4.x (hub) names; either layout is legitimate there.
    expected = {"5.x-safetensors": [names_5x], "4.x-bin": [names_4x], "save_pretrained": [names_4x, names_5x]}
    assert stored_keys(directory) in expected[layout]
    config = hf_model.config
    assert_transformers_reproduces(directory, lambda x: hf_logits(hf_model, x), config.max_length, config.num_mel_bins)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_transformers_directory_loads_with_identical_logits(hf_model, tmp_path, layout):
    directory = write_hf_dir(hf_model, tmp_path / "hf", layout)
    ckpt = load_checkpoint(directory)
    c, hf = ckpt.config, hf_model.config
    assert ckpt.format == "huggingface"
    assert (c.embed_dim, c.depth, c.num_heads, c.mlp_dim, c.qkv_bias) == (
        hf.hidden_size,
        hf.num_hidden_layers,
        hf.num_attention_heads,
        hf.intermediate_size,
        hf.qkv_bias,
    )
    assert (c.fstride, c.tstride, c.num_mel_bins, c.target_length, c.layer_norm_eps) == (
        hf.frequency_stride,
        hf.time_stride,
        hf.num_mel_bins,
        hf.max_length,
        hf.layer_norm_eps,
    )
    if "id2label" in json.loads((directory / "config.json").read_text()):
        assert ckpt.labels == [hf.id2label[i] for i in range(hf.num_labels)]
    else:  # transformers 5.x omits default names (LABEL_i) for the default 2 labels
        assert ckpt.labels == [f"class_{i}" for i in range(hf.num_labels)]
    fbank = random_fbank(3, hf.max_length, hf.num_mel_bins)
    with torch.no_grad():
        ours = ckpt.build_model()(fbank)
    torch.testing.assert_close(ours, hf_logits(hf_model, fbank), rtol=0, atol=LOGITS_ATOL)


def test_our_directory_loads_into_transformers(hf_model, tmp_path):
    """``save_checkpoint`` -> ``ASTForAudioClassification.from_pretrained``: every weight used, same logits."""
    ckpt = load_checkpoint(write_hf_dir(hf_model, tmp_path / "hf", "5.x-safetensors"))
    ours = ckpt.build_model()
    out = save_checkpoint(tmp_path / "ours", ckpt.config, ours.state_dict(), ckpt.labels, ckpt.frontend)
    loaded = assert_transformers_reproduces(out, ours, ckpt.config.target_length, ckpt.config.num_mel_bins)
    assert loaded.config.id2label == dict(enumerate(ckpt.labels))
    assert loaded.config.layer_norm_eps == ckpt.config.layer_norm_eps


@pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values:UserWarning")
@pytest.mark.parametrize("seconds", [0.5, 2.0])
def test_feature_extractor_agrees_with_our_front_end(tmp_path, speech, seconds):
    """transformers' ``ASTFeatureExtractor`` read from our preprocessor_config.json.

    It uses torchaudio's Kaldi fbank when torchaudio is installed, else its own numpy filter bank
    (the case here: no torchaudio in the environment); either way it should agree with ours within
    the bounds of the filter-bank comparison scaled by the normalisation 1 / (2 std):
    max abs <= 2e-2 / (2 std), mean abs <= 5e-4 / (2 std).
    """
    config = ASTConfig(embed_dim=64, num_heads=4, depth=1, target_length=128, num_labels=3)
    frontend = FrontEndConfig(target_length=128)  # AST's 128 mel bins, AudioSet statistics
    labels = ["a", "b", "c"]
    out = save_checkpoint(tmp_path / "ours", config, ASTModel(config).state_dict(), labels, frontend)
    extractor = transformers.ASTFeatureExtractor.from_pretrained(out)
    assert (extractor.sampling_rate, extractor.max_length, extractor.num_mel_bins, extractor.do_normalize) == (
        16000,
        128,
        128,
        True,
    )
    assert (extractor.mean, extractor.std) == (pytest.approx(frontend.mean), pytest.approx(frontend.std))

    x = speech[: int(16000 * seconds)]  # 0.5 s is padded to 128 frames, 2 s is cropped
    theirs = extractor(x, sampling_rate=16000, return_tensors="pt")["input_values"]
    ours = KaldiFbank(frontend)(torch.from_numpy(x)[None])
    assert theirs.shape == ours.shape == (1, 128, 128)
    error = (theirs - ours).abs().double()
    scale = 2 * frontend.std
    assert error.max() <= 2e-2 / scale and error.mean() <= 5e-4 / scale, (error.max(), error.mean())
