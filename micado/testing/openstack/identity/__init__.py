"""The emulated Keystone v3: accounts and tokens (:mod:`.models`), their HTTP face (:mod:`.responses`,
:mod:`.urls`), and the check of tokens with a real Keystone (:mod:`.external`)."""
