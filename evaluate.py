"""Score segmentations on DAVIS-2016: python evaluate.py dataset.root=<DAVIS> predictions=<dir>"""

import hydra
from omegaconf import DictConfig

import nims.evaluate
from nims.report import main_of


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig):
    return main_of(nims.evaluate.run)(cfg)


if __name__ == "__main__":
    main()
