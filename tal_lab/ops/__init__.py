"""Plain tensor functions of temporal action localization: label assignment, losses, boundary
distributions, decoding of head outputs into segments, and non-maximum suppression."""
