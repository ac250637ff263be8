"""NIMS: salient motion maps from the interpretation of a frame-level motion classifier.

Reference implementation of Meunier & Bouthemy, "Unsupervised computation of salient motion
maps from the interpretation of a frame-based classification network" (BMVC 2021).

Array conventions used throughout the package
---------------------------------------------
- A flow field is ``(H, W, 2)`` float32 in pixels of its own resolution, channel 0 = horizontal
  displacement ``u`` (towards increasing column ``x``), channel 1 = vertical ``v`` (towards
  increasing row ``y``): OpenCV's order. At the model it is a ``(B, 2, H, W)`` tensor.
- Pixel coordinates are ``x`` = column index, ``y`` = row index, origin at the top-left pixel.
- Masks are ``(H, W)`` bool; label maps ``(H, W)`` int32 with 0 meaning "no region".
"""

__version__ = "0.1.0"
