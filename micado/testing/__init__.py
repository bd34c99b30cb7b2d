"""The local MiCADO stack: loopback emulators of the services micado-client talks to.

``micado.testing.submitter`` (TOSCA Submitter), ``micado.testing.openstack``
(Keystone, Nova, Glance, Neutron), ``micado.testing.ec2`` (moto's EC2 server behind
a fault proxy), ``micado.testing.vm`` (a local OpenSSH "VM"),
``micado.testing.playbook`` (an ansible-micado-shaped playbook) and
``micado.testing.stack`` (all of them together). They need the ``testing`` extra
(``pip install micado-client[testing]``) and listen on 127.0.0.0/8 only.
"""
