"""Plain nn.Module image models (no Lightning in here)."""
