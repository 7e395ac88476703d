"""What a study or a comparison yields, for people: the evidence on a front (paired tests,
P(front)), tables, plots, the report, the terminal display and MLflow tracking. Uses the wings
below it; never Optuna."""
