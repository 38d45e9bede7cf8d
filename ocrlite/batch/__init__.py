"""Batch runs over files and folders: planning, running (local processes), the run report."""
