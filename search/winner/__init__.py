"""Using what a study found: the top trials' models as predictors (one place rebuilds a trained model),
predictions, ensembles, evaluation, export, the model server and the steel cascade."""
