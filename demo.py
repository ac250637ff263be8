"""The non-learned part of NIMS on one frame: python demo.py [dataset.root=<DAVIS>]"""

import hydra
from omegaconf import DictConfig

import nims.demo
from nims.report import main_of


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig):
    return main_of(nims.demo.run)(cfg)


if __name__ == "__main__":
    main()
