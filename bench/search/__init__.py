"""Searching a space: the space file, designs and their objectives, Optuna's study and
storages (the only wing that touches Optuna), pruners and samplers (registered strategies),
trial records and Pareto fronts. Uses the wings below it."""
