"""LightningModules for image tasks."""
