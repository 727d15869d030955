"""Network layers shared by backbones, necks and heads; they never import from tal_lab.models."""
