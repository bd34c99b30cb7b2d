"""The emulated Neutron v2.0: networks, subnets, security groups, ports and floating IPs (:mod:`.models`),
and their HTTP face (:mod:`.responses`, :mod:`.urls`)."""
