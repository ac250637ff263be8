"""Train the frame classifier: python train.py task=independent|crowd [key=value ...]"""

import hydra
from omegaconf import DictConfig

import nims.train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    return nims.train.run(cfg)


if __name__ == "__main__":
    main()
