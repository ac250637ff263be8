"""Ablation by inpainting (the paper's Fig. 2): python ablate.py dataset=independent_synth"""

import hydra
from omegaconf import DictConfig

import nims.ablation
from nims.report import main_of


@hydra.main(version_base="1.3", config_path="conf", config_name="ablate")
def main(cfg: DictConfig):
    return main_of(nims.ablation.run)(cfg)


if __name__ == "__main__":
    main()
