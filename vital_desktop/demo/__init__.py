"""Deterministic synthetic data for the demo site (images, inspection records, telemetry)."""

from vital_desktop.demo.images import DemoFiles, generate_demo_files, load_recipe

__all__ = ["DemoFiles", "generate_demo_files", "load_recipe"]
