"""Where things go unless told otherwise: the embedded default stores, relative to the folder
``bench`` runs in."""

DEFAULT_STORAGE = "sqlite:///runs/optuna.db"  # Optuna: studies and trials
DEFAULT_TRACKING = "sqlite:///runs/mlflow.db"  # MLflow: runs, parameters, metrics
DEFAULT_ARTIFACTS = "runs/mlartifacts"  # MLflow artifacts of the embedded store
