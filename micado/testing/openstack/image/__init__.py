"""The emulated Glance v2: images (:mod:`.models`) and their HTTP face (:mod:`.responses`, :mod:`.urls`)."""
