"""Deploying MiCADO on a VM: SSH (:mod:`~micado.installer.ssh`) and the ansible-micado
playbooks (:mod:`~micado.installer.playbooks`, :mod:`~micado.installer.ansible`,
:mod:`~micado.installer.runner`); they know SSH and Ansible, not clouds.
"""
