"""Running things end to end: a sweep (``Sweep``, its trials and worker processes) and
training or comparing networks (``experiment``, ``compare``). The command line is a thin layer
over this wing."""
