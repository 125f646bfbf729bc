"""The training loop: data set-up and batches, the Accelerate loop (``trainer.py``), what the processes of a run
agree on (``distributed.py``), validation over every window, and wandb."""
