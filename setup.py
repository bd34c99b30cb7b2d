"""Packaging of micado-client: the metadata is in pyproject.toml."""

from setuptools import setup

setup()
