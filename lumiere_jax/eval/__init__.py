"""Evaluation: the moving_shapes probe (:mod:`.probe`) and generic video diagnostics
(:mod:`.diagnostics`). Modules are imported explicitly."""
