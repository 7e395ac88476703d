"""Training one network and scoring it: the recipe, losses, the training loop, metrics,
sliding-window inference, checkpoints, and training a design over seeds (``seeds``). Uses
:mod:`bench.arch`, :mod:`bench.data` and :mod:`bench.core`."""
