"""Images and what is made of them: image files (`images`: reading, writing, pixel limits,
gray/RGB), training patches and the W/A/V split (`datasets`), and the degradations that make
inputs from clean images (`degradations`).

Imports: the foundation (`hinas.config`, `hinas.errors`, `hinas.registry`, `hinas.io`) and
`hinas.measures`."""
