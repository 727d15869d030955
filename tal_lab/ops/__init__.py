"""Plain tensor functions of temporal action localization, one job per module: label assignment
(``assign``), losses (``losses``; TriDet's in ``trident_losses``), boundary distributions
(``boundary``), the decoding tail every head shares (``decode``) and non-maximum suppression
(``nms``). They import only ``tal_lab.core``: never the models, data or evaluation."""
