"""Training: the s4GAN and supervised loops, losses, samplers, schedules and run state.

Modules import torch; :mod:`als4gan.train.config` does not (the CLI reads it for ``--help``).
"""
