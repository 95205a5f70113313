"""Restoration methods and the files they live in: every trainable architecture in one registry
(`architectures`: the searched network, DnCNN, FSRCNN, fixed-width variants), classical methods
(`classical`: noisy, bicubic, BM3D), the trained-model folder (`folder`), the models shipped with
hinas (`pretrained`) and ONNX export and runtime (`export`).

Imports: the foundation, `hinas.measures`, `hinas.data` and `hinas.space`."""
