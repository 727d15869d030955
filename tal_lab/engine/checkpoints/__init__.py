"""Checkpoints: tal_lab's own training state (resume) and import of the official repositories'."""
