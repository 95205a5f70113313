"""What is measured: PSNR/SSIM under the literature's conventions (`metrics`), training losses
(`losses`), and parameter / MAC counts (`complexity`).

Imports: the foundation only (`hinas.config`, `hinas.errors`)."""
