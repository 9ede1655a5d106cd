"""Benchmarks for gitserver's hot paths, and the real-history repository generator they use.

`benchmarks.history.generate(size)` returns a cached bare repository whose history is made
from successive releases of real Python packages (see benchmarks/README.md).
"""
