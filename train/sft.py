"""Stage 2: QLoRA SFT of Llama 3.1 with TRL (one GPU, or several through `accelerate launch`).

    python -m train.sft --config train/configs/recipe.yaml
    accelerate launch --config_file train/accelerate/ddp.yaml -m train.sft --config train/configs/recipe.yaml \
        gradient_accumulation_steps=8          # 2 GPUs x 8 = effective batch 16
"""

import logging

from reviewgpt.config import cli_args, load_config
from reviewgpt.training.sft import TrainConfig, train


def main(argv: list[str] | None = None) -> None:
    args = cli_args(__doc__, "train/configs/recipe.yaml").parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    cfg = load_config(TrainConfig, args.config, args.overrides)
    print(f"adapter saved to {train(cfg)}")


if __name__ == "__main__":
    main()
