"""Hyperparameter sweeps: ``litlab sweep FILE`` runs a W&B sweep file on W&B or with Optuna.

Nothing heavy is imported here, so ``litlab sweep --help`` and the CLI's trial hook stay fast.
"""
