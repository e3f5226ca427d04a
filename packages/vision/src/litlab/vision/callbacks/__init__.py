"""Callbacks for image tasks."""
