"""The jobs a user runs: `search`, `train`, `evaluate`, `restore`, and the genotype tools of
`hinas arch` (`arch`). Each job uses the layers below it (`hinas.runtime` and lower) and never
imports another job; the command line (`hinas.cli`) and the demo (`hinas.demo`) compose them."""
