"""The machinery the jobs share: how steps execute (`execution`: precision, memory format,
loaders), processes (`distributed`), the optimisation step and training-image loading
(`engine`), applying a model whole or by tiles (`inference`), scoring it (`scoring`), run folders,
checkpoints and logs (`runs`, `runlog`, `scalars`) and plots (`viz`).

Imports: every lower layer (foundation, `hinas.measures`, `hinas.data`, `hinas.space`,
`hinas.models`); never a job."""
