"""Stage 3, training (notebooks 01-03): augmentation, REARANK's rewards, the GRPO pieces both policy
families share (``grpo.py``), the generative policy's TRL trainer with its settings, presets,
overrides, checks and callbacks, the scored policy's trainer, the direct-SFT baseline and export.
Imports ``core``, ``data`` and ``rank``.
"""
