"""ckpt: a checkpoint manager for machine-learning training runs."""
