"""The golden fixtures of the official ActionFormer / TriDet code (``../shared/reference/golden``).

Case names, and a loader that reads each fixture once per test session. Tests that use them carry
``@pytest.mark.needs_shared`` and take ``shared_dir`` from the conftest fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

# The four ActionFormer models of the study (backbone x neck): the golden fixtures and the full
# THUMOS14 configs (reference/keys/full_configs.json) use these names.
AF_MODELS = ["af_convtransformer_identity", "af_convtransformer_fpn", "af_conv_identity", "af_conv_fpn"]
# ActionFormer fixtures: one per model, plus a drop-path stress case (drop-path modules at p = 0).
AF_CASES = [*AF_MODELS, "af_convtransformer_identity_droppath_stress"]
# TriDet SGP-backbone fixtures.
SGP_CASES = ["tridet_sgp_backbone", "tridet_sgp_backbone_stress", "tridet_sgp_backbone_w3"]

_CACHE: dict[tuple[Path, str], dict[str, Any]] = {}


def load_golden(shared_dir: Path, name: str) -> dict[str, Any]:
    """The golden fixture ``name``, loaded once and shared by every test: do not modify it."""
    key = (shared_dir, name)
    if key not in _CACHE:
        _CACHE[key] = torch.load(shared_dir / "reference" / "golden" / f"{name}.pt", weights_only=True)
    return _CACHE[key]
