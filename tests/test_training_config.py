"""Recipes, --set overrides and config validation."""

from __future__ import annotations

import pytest

from ast_deploy.errors import InputError
from ast_deploy_training.config import TrainConfig, for_fold, load_config, recipe_names
from ast_deploy_training.train import learning_rate

# The paper's recipes, as in the AST authors' released training scripts.
PAPER = {
    "audioset_full": dict(target_length=1024, freqm=48, timem=192, mixup=0.5, noise=False, batch_size=12, lr=1e-5,
                          epochs=5, lr_decay_start=2, lr_decay_every=1, lr_decay_gamma=0.5, warmup_steps=1000,
                          balanced_sampling=True, wa_start=1, wa_end=5, loss="bce", norm_mean=-4.2677393,
                          norm_std=4.5689974, init="imagenet"),
    "audioset_balanced": dict(target_length=1024, freqm=48, timem=192, mixup=0.5, noise=False, batch_size=12, lr=5e-5,
                              epochs=25, lr_decay_start=10, lr_decay_every=5, lr_decay_gamma=0.5, warmup_steps=1000,
                              balanced_sampling=False, wa_start=6, wa_end=25, loss="bce", init="imagenet"),
    "esc50": dict(target_length=512, freqm=24, timem=96, mixup=0.0, noise=False, batch_size=48, lr=1e-5, epochs=25,
                  lr_decay_start=5, lr_decay_every=1, lr_decay_gamma=0.85, warmup_steps=0, balanced_sampling=False,
                  wa_start=0, loss="ce", norm_mean=-6.6268077, norm_std=5.358466, init="checkpoint",
                  folds=[1, 2, 3, 4, 5]),
    "speechcommands": dict(target_length=128, freqm=48, timem=48, mixup=0.6, noise=True, batch_size=128, lr=2.5e-4,
                           epochs=30, lr_decay_start=5, lr_decay_every=1, lr_decay_gamma=0.85, warmup_steps=0,
                           balanced_sampling=False, wa_start=0, loss="bce", norm_mean=-6.845978,
                           norm_std=5.5654526, init="imagenet"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipes_reproduce_the_papers_hyper_parameters(name: str) -> None:
    config = load_config(name)
    for key, value in PAPER[name].items():
        assert getattr(config, key) == value, key
    assert config.optimizer == "adam" and config.betas == [0.95, 0.999] and config.weight_decay == 5e-7
    assert (config.fstride, config.tstride) == (10, 10)


def test_every_recipe_loads() -> None:
    assert set(PAPER) | {"quickstart"} <= set(recipe_names())
    for name in recipe_names():
        load_config(name, ["train_data=x.csv"])


def test_set_coerces_to_the_field_type() -> None:
    c = load_config("speechcommands", ["lr=1e-3", "epochs=3", "noise=false", "betas=0.9,0.98", "folds=[1, 2]",
                                       "init_weights=my.pth", "norm_std=5"])  # fmt: skip
    assert (c.lr, c.epochs, c.noise, c.betas, c.folds, c.init_weights, c.norm_std) == (
        1e-3,
        3,
        False,
        [0.9, 0.98],
        [1, 2],
        "my.pth",
        5.0,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["learning_rate=1"], "unknown config key 'learning_rate'"),
        (["epochs=two"], "config key epochs"),
        (["noise=maybe"], "config key noise"),
        (["optimizer=sgd"], "config key optimizer"),
        (["lr"], "expected key=value"),
        (["grad_accum=5"], "grad_accum"),
        (["wa_start=3", "wa_end=99"], "wa_start/wa_end"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config("speechcommands", overrides)


def test_unknown_key_in_a_toml_file_names_file_and_key(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('train_data = "a.csv"\n[optim]\nlearnig_rate = 1e-3\n')
    with pytest.raises(InputError, match=r"mine.toml: unknown config key 'learnig_rate'"):
        load_config(path)


def test_missing_recipe_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"recipes: .*esc50"):
        load_config("no_such_recipe")


def test_fold_paths() -> None:
    c = for_fold(load_config("esc50"), 3)
    assert c.train_data.endswith("esc_train_data_3.json") and c.valid_data.endswith("esc_eval_data_3.json")
    assert c.folds == []


def test_step_schedule_is_the_authors_multisteplr_with_warmup() -> None:
    c = TrainConfig(train_data="x", lr=1.0, lr_decay_start=2, lr_decay_every=1, lr_decay_gamma=0.5, warmup_steps=4)
    assert [learning_rate(c, s, 1, 100) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    # MultiStepLR(milestones=[2, 3, ...]) stepped after each epoch: epochs 1-2 at lr, epoch 3 at lr/2, ...
    assert [learning_rate(c, 100, e, 1000) for e in range(1, 6)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    c = TrainConfig(train_data="x", lr=1.0, lr_decay_start=10, lr_decay_every=5, lr_decay_gamma=0.5)
    assert [learning_rate(c, 0, e, 1) for e in (10, 11, 15, 16, 21)] == [1.0, 0.5, 0.5, 0.25, 0.125]


def test_cosine_schedule() -> None:
    c = TrainConfig(train_data="x", lr=1.0, lr_schedule="cosine", min_lr=0.0, warmup_steps=0)
    assert learning_rate(c, 0, 1, 100) == pytest.approx(1.0)
    assert learning_rate(c, 50, 1, 100) == pytest.approx(0.5)
    assert learning_rate(c, 100, 1, 100) == pytest.approx(0.0, abs=1e-12)
