"""The config tree, composed with Hydra's compose API as the entry points compose it."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import CONFIG_DIR, REPO


@pytest.fixture
def composer():
    GlobalHydra.instance().clear()
    initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR))
    yield lambda name, overrides=(): compose(
        name, overrides=list(overrides), return_hydra_config=True
    )
    GlobalHydra.instance().clear()


def test_defaults_are_the_measured_best(composer):
    cfg = composer("evaluate")
    assert cfg.step2.beta == 1.2 and cfg.saliency.lam == 0.15
    light = composer("evaluate", ["task=crowd"]).step2
    assert light.candidates == "contrast" and (light.alpha1, light.alpha2) == (None, None)
    assert cfg.step2.scale == "std" and cfg.step2.min_outliers == 50
    assert cfg.step2.selection == "relevance_mass" and cfg.attribution.rules.start == "unit"
    assert cfg.step2.parallax_ratio == 1024.0 and cfg.step2.parallax_step.name == "epipolar"
    assert cfg.checkpoint == "checkpoints/independent.pt"
    assert cfg.step2.residual_split is True and cfg.step2.min_share == 0.05
    assert cfg.postprocess.name == "colour"  # every method's masks, the baselines' too
    assert composer("evaluate", ["method=dominant_motion"]).postprocess.name == "colour"
    assert composer("evaluate", ["task=crowd"]).postprocess.name == "none"


@pytest.mark.parametrize("entry", ["evaluate", "demo", "train", "ablate"])
@pytest.mark.parametrize("task", ["independent", "crowd"])
def test_experiment_paper_is_the_paper_as_written(composer, entry, task):
    cfg = composer(entry, [f"experiment=paper_{task}"])
    assert cfg.task.name == task
    assert cfg.step2.selection == "paper" and cfg.lrp_rules.start == "logit"
    assert (cfg.decision.flips, cfg.decision.window) == (1, 1)
    assert cfg.model.head == "fc"
    assert cfg.checkpoint == f"checkpoints/{task}_paper.pt"
    if entry in ("evaluate", "demo"):
        assert cfg.saliency.lam == 0.15 and cfg.attribution.rules.start == "logit"
        defaults = composer(entry, [f"task={task}"])
        assert (defaults.decision.flips, defaults.decision.window) == (4, 3)
        assert defaults.get("model") is None  # the classifier is the checkpoint's
    assert cfg.postprocess.name == "none"
    if task == "independent":
        assert cfg.step2.beta == 1.6 and cfg.step2.scale == "std"
        assert cfg.step2.parallax_ratio is None  # affine layers on every frame
        assert cfg.step2.residual_split is False
    else:
        assert (cfg.step2.alpha1, cfg.step2.alpha2) == (-0.01, 4.0)


@pytest.mark.parametrize(
    "task, norm, step2", [("independent", "batch", "hierarchical"), ("crowd", "instance", "light")]
)
def test_task_picks_normalisation_and_step2(composer, task, norm, step2):
    cfg = composer("evaluate", [f"task={task}"])
    assert cfg.task.norm == norm and cfg.step2.name == step2


def test_command_line_beats_the_task_default(composer):
    assert composer("evaluate", ["task=crowd", "step2=hierarchical"]).step2.name == "hierarchical"


def test_each_threshold_has_one_name_its_group(composer):
    from hydra.errors import ConfigCompositionException

    from nims.report import resolved_config

    cfg = composer("evaluate", ["step2.beta=1.3"])
    assert cfg.step2.beta == 1.3
    # What a sweep changed is what the saved config shows: no second name left at 1.2.
    saved = resolved_config(cfg)
    assert "beta" not in saved and saved["step2"]["beta"] == 1.3
    light = composer("evaluate", ["task=crowd", "step2.alpha2=6", "step2.alpha1=-0.05"]).step2
    assert (light.alpha1, light.alpha2) == (-0.05, 6)
    assert composer("evaluate", ["saliency.lam=0.3"]).saliency.lam == 0.3
    for entry in ("evaluate", "train", "demo", "ablate"):
        with pytest.raises(ConfigCompositionException, match="beta"):
            composer(entry, ["beta=1.2"])


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
    assert (
        composer("train", ["lrp_rules=zplus_zbeta_dataset"]).attribution.rules.bounds == "dataset"
    )
    assert composer("train", ["attribution=integrated_gradients"]).attribution.steps == 32


def test_every_entry_point_config_composes(composer):
    assert composer("generate", ["dataset=independent_synth"]).dataset.name == "independent_synth"
    assert composer("ablate").ablation.region == "gt"
    assert composer("demo", ["task=crowd"]).step2.name == "light"
    evaluate = composer("evaluate", ["method=dominant_motion"])
    assert evaluate.method.threshold == "otsu"
    assert composer("evaluate", ["method=epipolar_motion"]).method.seed == 0
    assert composer("evaluate", ["step2=epipolar"]).step2.selection == "paper"
    assert composer("evaluate", ["dataset=parallax_synth"]).dataset.eval_split == "all"
    unet = composer("train", ["model=unet", "task=crowd"])
    assert unet.model.name == "unet" and unet.dataset.name == "crowd_synth"
    assert composer("evaluate").checkpoint == "checkpoints/independent.pt"
    assert composer("evaluate", ["task=crowd"]).checkpoint == "checkpoints/crowd.pt"
    # The crowd task gates masks by the decision and estimates flow at full resolution.
    crowd = composer("evaluate", ["task=crowd"])
    assert crowd.saliency.gate and crowd.flow.finest_scale == 0
    assert not composer("evaluate").saliency.gate
    assert composer("evaluate", ["task=crowd", "flow=rlof"]).flow.name == "rlof"


@pytest.mark.parametrize("entry", ["train", "evaluate", "demo", "ablate"])
def test_every_entry_point_that_runs_a_network_takes_the_common_keys(composer, entry):
    cfg = composer(entry, ["device=cpu", "progress=false", "logger=none"])
    assert (cfg.device, cfg.progress, cfg.logger.name) == ("cpu", False, "none")
    assert composer("generate", ["progress=false"]).progress is False  # it runs no network


def test_wandb_runs_of_a_sweep_are_named_by_their_overrides(composer, tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from nims.tracking import run_name

    for mode, expected in ((RunMode.RUN, "12-00-00-000001"), (RunMode.MULTIRUN, "step2.beta=1.6")):
        cfg = composer("evaluate", ["step2.beta=1.6"])
        OmegaConf.set_readonly(cfg.hydra, False)
        with open_dict(cfg):
            cfg.hydra.job.override_dirname = "step2.beta=1.6"
            cfg.hydra.mode = mode
        HydraConfig.instance().set_config(cfg)
        assert run_name(tmp_path / "12-00-00-000001") == expected


ENTRY_POINTS = ("evaluate", "train", "demo", "ablate", "generate")


def _options(group: str):
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def _groups_of(entry: str):
    """The config groups an entry point's defaults list names (hydra/launcher for all)."""
    from omegaconf import OmegaConf

    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{entry}.yaml"))["defaults"]
    groups = [next(iter(item)) for item in defaults if isinstance(item, dict)]
    return [g.replace("optional ", "") for g in groups if g != "optional local"] + [
        "hydra/launcher"
    ]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_composes_with_every_option_of_its_groups(composer, entry):
    from omegaconf import OmegaConf

    combinations = 0
    for group in _groups_of(entry):
        for option in _options(group):
            cfg = composer(entry, [f"{group}={option}"])
            # Everything resolves except the values a user must give (dataset.input=???).
            OmegaConf.to_container(
                OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]),
                resolve=True,
                throw_on_missing=False,
            )
            combinations += 1
    assert combinations >= 5


def test_the_default_checkpoint_follows_task_and_method(composer):
    assert composer("evaluate", ["task=crowd", "method=unet"]).checkpoint == (
        "checkpoints/unet_crowd.pt"
    )
    assert composer("evaluate", ["task=crowd"]).checkpoint == "checkpoints/crowd.pt"
    assert composer("evaluate", []).checkpoint == "checkpoints/independent.pt"
    for name in ("unet_crowd", "crowd", "independent"):
        assert (REPO / "checkpoints" / f"{name}.pt").is_file()
    assert composer("generate", ["progress=false"]).progress is False


def test_the_papers_experiment_refuses_a_classifier_with_another_head(composer):
    from nims.methods.nims import task_classifier

    cfg = composer("evaluate", ["experiment=paper_independent"])
    assert task_classifier(cfg).head == "fc"
    cfg.checkpoint = str(REPO / "checkpoints" / "independent.pt")
    with pytest.raises(ValueError, match=r"model.head=fc .* has head 'mean'"):
        task_classifier(cfg)


def test_the_papers_experiment_runs_the_papers_hierarchical_step(composer):
    step2 = composer("evaluate", ["experiment=paper_independent"]).step2
    paper = {"beta": 1.6, "scale": "std", "selection": "paper", "residual_split": False}
    paper |= {"parallax_ratio": None, "evidence": "relevance", "stride": 1}
    assert {key: step2[key] for key in paper} == paper


@pytest.mark.parametrize(
    "group, option, registry_path",
    [
        ("step2", "hierarchical", "nims.step2:STEP2_METHODS"),
        ("step2", "light", "nims.step2:STEP2_METHODS"),
        ("step2", "epipolar", "nims.step2:STEP2_METHODS"),
        ("flow", "dis", "nims.flow_backends:FLOW_BACKENDS"),
        ("postprocess", "colour", "nims.postprocess:POSTPROCESSORS"),
    ],
)
def test_python_defaults_are_the_yaml_defaults(composer, group, option, registry_path):
    # One owner per setting: a function called from Python without a key behaves as a run
    # composed with that group's YAML does.
    import importlib
    import inspect

    module, name = registry_path.split(":")
    node = OmegaConf.to_container(composer("evaluate", [f"{group}={option}"])[group], resolve=True)
    implementation = getattr(importlib.import_module(module), name).get(node["name"])
    python = {
        key: parameter.default
        for key, parameter in inspect.signature(implementation).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    differ = {
        key: (python[key], value)
        for key, value in node.items()
        if key in python and not isinstance(value, dict) and python[key] != value
    }
    assert not differ, f"{group}={option}: Python default != YAML: {differ}"
