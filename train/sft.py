"""Stage 2: QLoRA SFT of Llama 3.1 with TRL (one GPU, or several through `accelerate launch`).

    python -m train.sft                                   # = --config train/configs/recipe.yaml
    python -m train.sft --config train/configs/recipe.yaml --learning_rate 2e-4 --lora_r 8
    python -m train.sft --help                            # every ReviewDataArguments / SFTConfig / ModelConfig field
    accelerate launch --config_file train/accelerate/ddp.yaml -m train.sft \
        --config train/configs/recipe.yaml --gradient_accumulation_steps 8   # 2 GPUs x 8 = effective batch 16

An interrupted run continues from the newest checkpoint in output_dir when started again.
"""

import logging

from reviewgpt.training.sft import parse_args, train

DEFAULT_CONFIG = "train/configs/recipe.yaml"


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" not in argv and not {"-h", "--help"} & set(argv):
        argv = ["--config", DEFAULT_CONFIG, *argv]  # never fall back to TRL's generic defaults by accident
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    data, training, model = parse_args(argv, prog="python -m train.sft")
    print(f"adapter saved to {train(data, training, model)}")


if __name__ == "__main__":
    main()
