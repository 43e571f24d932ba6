"""Search: the only place that holds an Optuna study: storage, objective, reports, CLI."""
