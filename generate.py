"""Generate a synthetic task set and its contact sheet: python generate.py dataset=crowd_synth"""

import hydra
from omegaconf import DictConfig

import nims.generate
from nims.report import main_of


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig):
    return main_of(nims.generate.run)(cfg)


if __name__ == "__main__":
    main()
