"""Training AST with the paper's recipes; writes checkpoints that ``ast-deploy export`` takes directly."""
