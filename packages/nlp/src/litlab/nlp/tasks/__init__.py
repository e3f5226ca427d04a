"""LightningModules for text: language modelling and classification."""
