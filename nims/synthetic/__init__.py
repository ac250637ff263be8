"""Synthetic data with known motion: the task sets, their generators and known-flow frame pairs.

- :mod:`nims.synthetic.render`: a small ray caster (planes, rectangles, ellipses; exact flow);
- one module per generator, each with its config dataclass: :mod:`nims.synthetic.crowd`
  (``crowd_synth``), :mod:`nims.synthetic.independent` (``independent_synth``,
  ``parallax_synth``), :mod:`nims.synthetic.sprites` (``crowd_sprites``, flat sprites drawn
  without the ray caster);
- :mod:`nims.synthetic.sets`: the cached task sets (registry ``GENERATORS``, one split function,
  the dataset class ``SyntheticFrames``);
- :mod:`nims.synthetic.scenes`: ``dataset=synthetic_scenes``, affine layers drawn on the fly at
  the classifier's resolution;
- :mod:`nims.synthetic.pairs`: single frame pairs with exactly known affine layers (tests, the
  demo, the flow benchmark).
"""
