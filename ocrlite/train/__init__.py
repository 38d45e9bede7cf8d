"""Training: synthetic data, tasks (det/cls/rec), one trainer, checkpoints and export."""
