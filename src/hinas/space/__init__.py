"""The search space and the method (paper §3), read bottom-up like the paper: candidate
operations (`ops`) → cells with the mixed edge of Eq. 1 (`cells`) → the supernet of Fig. 2 over
layers and width levels (`supernet`, with the stem and tail of `blocks`) → the genotype it is
decoded to (`genotype`, `derive`).

Imports: the package's own modules and the foundation (`hinas.config`, `hinas.errors`,
`hinas.registry`, `hinas.io`); nothing from data, models, runtime or the jobs."""
