"""The config tree, composed with Hydra's compose API as the entry points compose it."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import CONFIG_DIR


@pytest.fixture
def composer():
    GlobalHydra.instance().clear()
    initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR))
    yield lambda name, overrides=(): compose(name, overrides=list(overrides),
                                             return_hydra_config=True)
    GlobalHydra.instance().clear()


def test_defaults_are_the_measured_best(composer):
    cfg = composer("evaluate")
    assert (cfg.alpha1, cfg.alpha2, cfg.beta, cfg.lam) == (-0.01, 4.0, 1.2, 0.15)
    assert cfg.step2.beta == 1.2 and cfg.saliency.lam == 0.15
    assert cfg.step2.scale == "std" and cfg.step2.min_outliers == 50
    assert cfg.step2.selection == "relevance_mass" and cfg.attribution.rules.start == "unit"
    assert cfg.checkpoint == "checkpoints/independent.pt"


@pytest.mark.parametrize("entry", ["evaluate", "demo", "train"])
@pytest.mark.parametrize("task", ["independent", "crowd"])
def test_experiment_paper_is_the_paper_as_written(composer, entry, task):
    cfg = composer(entry, ["experiment=paper", f"task={task}"])
    assert (cfg.alpha1, cfg.alpha2, cfg.beta, cfg.lam) == (-0.01, 4.0, 1.6, 0.15)
    assert cfg.step2.selection == "paper" and cfg.attribution.rules.start == "logit"
    assert cfg.model.head == "fc"
    if entry != "train":
        assert cfg.checkpoint == f"checkpoints/{task}_paper.pt"
    if task == "independent":
        assert cfg.step2.beta == 1.6 and cfg.step2.scale == "std"
    else:
        assert (cfg.step2.alpha1, cfg.step2.alpha2) == (-0.01, 4.0)


@pytest.mark.parametrize("task, norm, step2", [("independent", "batch", "hierarchical"),
                                               ("crowd", "instance", "light")])
def test_task_picks_normalisation_and_step2(composer, task, norm, step2):
    cfg = composer("evaluate", [f"task={task}"])
    assert cfg.task.norm == norm and cfg.step2.name == step2


def test_command_line_beats_the_task_default(composer):
    assert composer("evaluate", ["task=crowd", "step2=hierarchical"]).step2.name == "hierarchical"


def test_thresholds_can_be_set_at_top_level_or_in_the_group(composer):
    assert composer("evaluate", ["beta=1.2"]).step2.beta == 1.2
    assert composer("evaluate", ["step2.beta=1.3"]).step2.beta == 1.3
    light = composer("evaluate", ["task=crowd", "alpha2=6", "alpha1=-0.05"]).step2
    assert (light.alpha1, light.alpha2) == (-0.05, 6)
    assert composer("evaluate", ["lam=0.3"]).saliency.lam == 0.3


def test_every_job_gets_its_own_output_folder(composer):
    hydra = OmegaConf.to_container(composer("evaluate").hydra, resolve=False)
    assert hydra["run"]["dir"].endswith("%H-%M-%S-%f}")  # microseconds: no shared folders
    assert hydra["sweep"]["subdir"] == "${hydra.job.num}"


def test_flow_backends_and_loggers_compose(composer):
    for backend in ("dis", "farneback", "tvl1", "deepflow", "rlof", "pcaflow", "raft"):
        assert composer("evaluate", [f"flow={backend}"]).flow.name == backend
    assert composer("evaluate", ["logger=none"]).logger.name == "none"


def test_wandb_mode_follows_the_environment(composer, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert composer("evaluate").logger.mode == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert composer("evaluate").logger.mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert composer("evaluate").logger.mode == "disabled"


def test_dataset_root_follows_nims_data(composer, monkeypatch):
    monkeypatch.setenv("NIMS_DATA", "/data/sets")
    assert composer("evaluate").dataset.root == "/data/sets/DAVIS"
    assert composer("evaluate", ["dataset.root=/x"]).dataset.root == "/x"


def test_parallel_launcher_is_available(composer):
    cfg = composer("evaluate", ["hydra/launcher=local_parallel"])
    assert cfg.hydra.launcher.n_jobs == 2


@pytest.mark.parametrize("task, norm", [("independent", "batch"), ("crowd", "instance")])
def test_train_config_composes_for_each_task(composer, task, norm):
    cfg = composer("train", [f"task={task}"])
    assert cfg.task.norm == norm and cfg.model.input_size == [96, 176]
    assert cfg.attribution.name == "lrp" and cfg.attribution.rules.first_layer == "zbeta"
    assert cfg.attribution.rules.bounds == "sample"
    assert composer("train", ["lrp_rules=zplus_zbeta_dataset"]).attribution.rules.bounds == \
        "dataset"
    assert composer("train", ["attribution=integrated_gradients"]).attribution.baseline == "zero"


def test_every_entry_point_config_composes(composer):
    assert composer("generate", ["dataset=independent_synth"]).dataset.name == "independent_synth"
    assert composer("ablate").ablation.region == "gt"
    assert composer("demo", ["task=crowd"]).step2.name == "light"
    evaluate = composer("evaluate", ["method=dominant_motion"])
    assert evaluate.method.threshold == "otsu"
    assert composer("evaluate", ["dataset=parallax_synth"]).dataset.eval_split == "all"
    unet = composer("train", ["model=unet", "task=crowd"])
    assert unet.model.name == "unet" and unet.dataset.name == "crowd_synth"
    assert composer("evaluate").checkpoint == "checkpoints/independent.pt"
    assert composer("evaluate", ["task=crowd"]).checkpoint == "checkpoints/crowd.pt"
