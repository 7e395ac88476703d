"""Architectures: the YAML grammar and its resolution (``config``), assembly into a network
(``assemble``, ``network``), the deploy form (``reparameterize``) and what a network costs:
parameters and FLOPs (``counting``, ``profile``), memory (``memory``) and latency (``latency``,
``runtimes``). Uses :mod:`bench.blocks` and :mod:`bench.core`."""
