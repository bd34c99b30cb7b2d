"""The emulated Nova 2.1: flavors, key pairs and servers (:mod:`.models`), and their HTTP face
(:mod:`.responses`, :mod:`.urls`)."""
