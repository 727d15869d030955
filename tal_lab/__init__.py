"""tal_lab: a notebook-driven workbench for Temporal Action Localization ablations.

ActionFormer split into backbone, neck and head (``tal_lab.models``), label assignment,
losses and post-processing as plain functions, the ActivityNet/THUMOS14 mAP
(``tal_lab.evaluation``), ActionFormer-format and synthetic datasets (``tal_lab.data``), a
training engine with a run store, and analysis helpers used by the notebooks.
"""

__version__ = "0.1.0"
