"""Peak memory per phase, measured on the full-size pipelines with fake tensors (`measure`), and the
catalogue's memory coefficients fitted from those measurements (`fit`, `python -m i2v.memory.fit`).

Importing this package imports nothing heavy; `i2v.memory.measure` imports torch and diffusers.
"""
