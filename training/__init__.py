"""Training of the world model: checkpoints, wandb set-up and the training loop."""
