"""Callbacks for text tasks."""
