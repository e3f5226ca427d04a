"""Image DataModules."""
