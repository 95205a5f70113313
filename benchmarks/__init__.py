"""The benchmarks of hinas: scripts that measure the library through its public API and print
JSON (docs/benchmarks.md). Each runs as a file, `python benchmarks/quality.py ...` (the form
the docs and the committed results' `command` fields use), or as a module,
`python -m benchmarks.quality ...`; what they share is :mod:`benchmarks.harness` (device, command
line, JSON output, child processes) and :mod:`benchmarks.stats` (the statistics of the
architecture-ranking benchmarks)."""
