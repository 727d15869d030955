"""Shared primitives with no knowledge of models or data: segment structures, unit conversions,
atomic file writes, CPU thread control and mixed precision."""
