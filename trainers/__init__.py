"""Training: data, models, tasks and the one loop. Nothing here knows of Optuna."""
