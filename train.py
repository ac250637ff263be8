"""Train the frame classifier: python train.py task=independent|crowd [key=value ...]"""

import hydra
from omegaconf import DictConfig

import nims.train
from nims.report import main_of


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    return main_of(nims.train.run)(cfg)


if __name__ == "__main__":
    main()
