"""Pixel-by-pixel classification (sequential and permuted sequential MNIST, the 8x8 digits):
a recurrent classifier over the last state, trained, evaluated and resumed like a language model."""
